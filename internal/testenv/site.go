package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/config"
)

// TempDir returns a new temporary directory with a short path (unix socket
// paths are limited to 108 bytes, and t.TempDir's can be longer), removed
// at cleanup. Its mode is 0755 so that a daemon run as another user may
// enter it.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spdu-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// DaemonConfig is the one way tests write a daemon configuration: the
// fields a test varies, with test defaults (fast polls) for the rest.
// Text renders it in the daemon's TOML format.
type DaemonConfig struct {
	Site     string // site; default "alpha"
	Socket   string // haproxy.socket
	Frontend string // haproxy.frontend; default none
	// Dir holds control.sock and state.json; default a new TempDir.
	Dir          string
	DNSListen    []string // dns.listen
	AgentListen  string   // agent.listen
	Metrics      string   // metrics.listen; default "off"
	Mode         string   // dns.mode; default "self"
	MinUp        int      // health.min_up; default 3
	Rise, Fall   int      // health.rise and .fall; default unset (the daemon's 2)
	PollInterval string   // haproxy.poll_interval; default "100ms"
	StaleAfter   string   // haproxy.stale_after; default "500ms"
	TTL          string   // dns.ttl; default unset (the daemon's 5s)
	Grace        string   // dns.shutdown_grace; default "0s"
	// Nameservers are dns.nameservers; default alpha.domain.tld. and
	// beta.domain.tld.
	Nameservers []string
	// API are the addresses of [dns.records.api] (IPv4 and IPv6 mixed);
	// default 127.0.0.1.
	API []string
	// DNS, Agent and Control are extra lines for those tables, such as
	// `identity = false`; Extra is appended at the end (whole tables such
	// as [[peers]] or [notify]).
	DNS, Agent, Control, Extra string
}

// Text returns the configuration file.
func (c DaemonConfig) Text(t testing.TB) string {
	t.Helper()
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	if c.Dir == "" {
		c.Dir = TempDir(t)
	}
	if c.MinUp == 0 {
		c.MinUp = 3
	}
	if c.Nameservers == nil {
		c.Nameservers = []string{"alpha.domain.tld.", "beta.domain.tld."}
	}
	if c.API == nil {
		c.API = []string{"127.0.0.1"}
	}
	var a, aaaa []string
	for _, ip := range c.API {
		if strings.Contains(ip, ":") {
			aaaa = append(aaaa, fmt.Sprintf("%q", ip))
		} else {
			a = append(a, fmt.Sprintf("%q", ip))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "site = %q\n[haproxy]\nsocket = %q\nbackend = \"api\"\n", def(c.Site, "alpha"), c.Socket)
	if c.Frontend != "" {
		fmt.Fprintf(&b, "frontend = %q\n", c.Frontend)
	}
	fmt.Fprintf(&b, "poll_interval = %q\nstale_after = %q\n", def(c.PollInterval, "100ms"), def(c.StaleAfter, "500ms"))
	fmt.Fprintf(&b, "[health]\nmin_up = %d\n", c.MinUp)
	if c.Rise != 0 {
		fmt.Fprintf(&b, "rise = %d\n", c.Rise)
	}
	if c.Fall != 0 {
		fmt.Fprintf(&b, "fall = %d\n", c.Fall)
	}
	fmt.Fprintf(&b, "[dns]\nlisten = %s\nzone = \"pool.domain.tld.\"\nmode = %q\nshutdown_grace = %q\nnameservers = %s\n%s",
		quoteList(c.DNSListen), def(c.Mode, "self"), def(c.Grace, "0s"), quoteList(c.Nameservers), lines(c.DNS))
	if c.TTL != "" {
		fmt.Fprintf(&b, "ttl = %q\n", c.TTL)
	}
	fmt.Fprintf(&b, "[dns.records.api]\n")
	if len(a) > 0 {
		fmt.Fprintf(&b, "a = [%s]\n", strings.Join(a, ", "))
	}
	if len(aaaa) > 0 {
		fmt.Fprintf(&b, "aaaa = [%s]\n", strings.Join(aaaa, ", "))
	}
	fmt.Fprintf(&b, "[agent]\nlisten = %q\n%s", c.AgentListen, lines(c.Agent))
	fmt.Fprintf(&b, "[metrics]\nlisten = %q\n", def(c.Metrics, "off"))
	fmt.Fprintf(&b, "[control]\nsocket = %q\nstate_file = %q\n%s", filepath.Join(c.Dir, "control.sock"), filepath.Join(c.Dir, "state.json"), lines(c.Control))
	b.WriteString(lines(c.Extra))
	return b.String()
}

// Write writes the configuration to a new file (mode 0600) in c.Dir (a
// new TempDir when unset) and returns its path.
func (c DaemonConfig) Write(t testing.TB) string {
	t.Helper()
	if c.Dir == "" {
		c.Dir = TempDir(t)
	}
	p := filepath.Join(c.Dir, "spdu-haproxy.toml")
	if err := os.WriteFile(p, []byte(c.Text(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Parse returns the configuration as config.Parse reads it, failing the
// test if it is invalid.
func (c DaemonConfig) Parse(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(c.Text(t)))
	if err != nil {
		t.Fatalf("test configuration: %v\n%s", err, c.Text(t))
	}
	return cfg
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// lines returns s ending in a newline, or "".
func lines(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// SiteHAProxy is the one way tests write a site's HAProxy configuration:
// a frontend "www" balancing backend "api" (roundrobin, HTTP checks every
// CheckInter, weight 100, agent checks when AgentPort is set), optionally a
// backup server and a "listen backup" section as examples/haproxy.cfg has.
type SiteHAProxy struct {
	// Frontend is the frontend's bind address ("127.0.0.2:8080"); with
	// TLSCert (a PEM file holding certificate, CA and key) it speaks TLS.
	Frontend, TLSCert string
	// Status, when set, is the daemon's metrics address to which the
	// frontend routes /.well-known/spdu/status (as /status/public).
	Status   string
	Backends []*Backend
	// AgentPort is the daemon's agent port; 0 leaves agent checks out.
	// AgentInter is their interval; default 100ms.
	AgentPort  int
	AgentInter time.Duration
	// Backup is the address of a backup server (the other site's listen
	// backup), or "".
	Backup string
	// ListenBackup is the bind address of a "listen backup" section that
	// serves this site's servers to the other site, or "".
	ListenBackup string
	// Connect is "timeout connect"; default 1s (short values make the
	// backup server take over quickly).
	Connect time.Duration
	// MaxConn, when set, is every server's maxconn: requests beyond it
	// wait in the backend's queue (load shedding's servers and queue
	// signals). Queue is "timeout queue" (default: HAProxy uses timeout
	// connect): how long a request waits there before a 503.
	MaxConn int
	Queue   time.Duration
}

// Config returns the HAProxy configuration (StartHAProxy fills
// {{SOCKET}}).
func (h SiteHAProxy) Config() string {
	if h.Connect == 0 {
		h.Connect = time.Second
	}
	if h.AgentInter == 0 {
		h.AgentInter = 100 * time.Millisecond
	}
	var b strings.Builder
	b.WriteString(HAProxyPreamble(h.Connect))
	if h.Queue > 0 {
		fmt.Fprintf(&b, "    timeout queue %s\n", h.Queue)
	}
	if h.Frontend != "" {
		ssl := ""
		if h.TLSCert != "" {
			ssl = " ssl crt " + h.TLSCert
		}
		fmt.Fprintf(&b, "frontend www\n    bind %s%s\n", h.Frontend, ssl)
		if h.Status != "" {
			b.WriteString("    http-request set-var(txn.spdu) bool(true) if { path /.well-known/spdu/status }\n" +
				"    http-request set-path /status/public if { var(txn.spdu) -m bool }\n" +
				"    use_backend spdu_status if { var(txn.spdu) -m bool }\n")
		}
		b.WriteString("    default_backend api\n")
		if h.Status != "" {
			fmt.Fprintf(&b, "backend spdu_status\n    server local %s\n", h.Status)
		}
	}
	b.WriteString("backend api\n    balance roundrobin\n    option httpchk GET /status\n")
	for _, be := range h.Backends {
		agent := ""
		if h.AgentPort != 0 {
			agent = fmt.Sprintf(" agent-check agent-port %d agent-send \"api/%s\\n\" agent-inter %s", h.AgentPort, be.Name, h.AgentInter)
		}
		if h.MaxConn > 0 {
			agent += fmt.Sprintf(" maxconn %d", h.MaxConn)
		}
		fmt.Fprintf(&b, "    server %s %s check inter 100ms fall 1 rise 1 weight 100%s\n", be.Name, be.Addr, agent)
	}
	if h.Backup != "" {
		fmt.Fprintf(&b, "    server b1 %s backup check inter 100ms fall 1 rise 1\n", h.Backup)
	}
	if h.ListenBackup != "" {
		fmt.Fprintf(&b, "listen backup\n    bind %s\n", h.ListenBackup)
		for _, be := range h.Backends {
			fmt.Fprintf(&b, "    server %s %s track api/%s\n", be.Name, be.Addr, be.Name)
		}
	}
	return b.String()
}

// Site is one test site: backends, a running HAProxy, and the daemon's
// configuration (not started: see StartBinary, or the daemon package's
// tests for an in-process daemon).
type Site struct {
	Backends []*Backend
	HAProxy  *HAProxy
	// Config is the daemon configuration, with the ports filled in;
	// CfgPath the file written from it.
	Config  DaemonConfig
	CfgPath string
	// DNSAddr, AgentAddr and HTTPAddr are the daemon's first DNS address,
	// its agent address and HAProxy's frontend address.
	DNSAddr, AgentAddr, HTTPAddr string
}

// SiteOpts are what StartSite varies.
type SiteOpts struct {
	// IP is the site's loopback address for its DNS listener and HAProxy
	// frontend; default 127.0.0.1.
	IP string
	// Delays are the backends' response delays (five backends without
	// delay by default).
	Delays []time.Duration
	// HAProxy is the HAProxy configuration; StartSite fills Frontend,
	// Backends (new ones, see Delays) and AgentPort unless set (NoAgent
	// leaves agent checks out).
	HAProxy SiteHAProxy
	NoAgent bool
	// Daemon is the daemon configuration; StartSite fills Socket,
	// DNSListen and AgentListen unless set.
	Daemon DaemonConfig
}

// StartSite starts the backends and HAProxy of a test site and writes the
// daemon's configuration file.
func StartSite(t testing.TB, o SiteOpts) *Site {
	t.Helper()
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.Delays == nil {
		o.Delays = make([]time.Duration, 5)
	}
	h := o.HAProxy
	s := &Site{Backends: h.Backends}
	if s.Backends == nil {
		s.Backends = StartSlowBackends(t, o.Delays...)
	}
	if h.Frontend == "" {
		h.Frontend = fmt.Sprintf("%s:%d", o.IP, FreePort(t))
	}
	h.Backends = s.Backends
	if h.AgentPort == 0 && !o.NoAgent {
		h.AgentPort = FreePort(t)
	}
	s.HAProxy = StartHAProxy(t, h.Config())
	s.HTTPAddr = h.Frontend
	c := o.Daemon
	if c.Socket == "" {
		c.Socket = s.HAProxy.Socket
	}
	if c.DNSListen == nil {
		c.DNSListen = []string{fmt.Sprintf("%s:%d", o.IP, FreePort(t))}
	}
	if c.AgentListen == "" {
		port := h.AgentPort
		if port == 0 {
			port = FreePort(t)
		}
		c.AgentListen = fmt.Sprintf("127.0.0.1:%d", port)
	}
	if c.Dir == "" {
		c.Dir = TempDir(t)
	}
	s.Config, s.DNSAddr, s.AgentAddr = c, c.DNSListen[0], c.AgentListen
	s.CfgPath = c.Write(t)
	return s
}
