package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// daemonBinary is the spdu-haproxy binary built once by TestMain.
var daemonBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spdu-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) //nolint:errcheck // a test runs the binary as nobody; it fails clearly if this did not work
	daemonBinary = filepath.Join(dir, "spdu-haproxy")
	build := exec.Command("go", "build", "-o", daemonBinary, "github.com/spdu/spdu-haproxy/cmd/spdu-haproxy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build spdu-haproxy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Daemon is the spdu-haproxy binary running as a child process.
type Daemon = testenv.Process

// StartDaemon runs `spdu-haproxy run -config cfgPath` with extra arguments
// and stops it at cleanup.
func StartDaemon(t testing.TB, cfgPath string, args ...string) *Daemon {
	t.Helper()
	return startDaemon(t, nil, cfgPath, args...)
}

func startDaemon(t testing.TB, attr *syscall.SysProcAttr, cfgPath string, args ...string) *Daemon {
	t.Helper()
	cmd := exec.Command(daemonBinary, append([]string{"run", "-config", cfgPath}, args...)...)
	cmd.SysProcAttr = attr
	return testenv.StartProcess(t, cmd)
}

// SiteOpts describes one test site.
type SiteOpts struct {
	Name       string // "alpha"
	IP         string // the site's "public" loopback address, e.g. 127.0.0.2
	DNSPort    int    // the nameserver port on IP
	HTTPPort   int    // the frontend port on IP
	BackupPort int    // the listen backup port on IP (and on the peer)
	PeerIP     string // the other site's address for the backup server, or ""
	MinUp      int    // health.min_up; default 3
}

// Site is one running site: backends, HAProxy, and a daemon config file.
type Site struct {
	Opts     SiteOpts
	Backends []*testenv.Backend
	HAProxy  *testenv.HAProxy
	CfgPath  string
	Daemon   *Daemon
	DNSAddr  string
}

func (o SiteOpts) haproxyConfig(backends []*testenv.Backend, agentPort int) string {
	var b strings.Builder
	b.WriteString(testenv.HAProxyPreamble(300 * time.Millisecond))
	fmt.Fprintf(&b, `frontend www
    bind %s:%d
    default_backend api
backend api
    balance roundrobin
    option httpchk GET /status
`, o.IP, o.HTTPPort)
	b.WriteString(testenv.ServerLines(backends, agentPort, 500*time.Millisecond))
	if o.PeerIP != "" {
		fmt.Fprintf(&b, "    server peer %s:%d backup check inter 200ms fall 1 rise 1\n", o.PeerIP, o.BackupPort)
	}
	fmt.Fprintf(&b, "listen backup\n    bind %s:%d\n", o.IP, o.BackupPort)
	for _, be := range backends {
		fmt.Fprintf(&b, "    server %s %s track api/%s\n", be.Name, be.Addr, be.Name)
	}
	return b.String()
}

// StartSite starts five backends and HAProxy for o, writes the daemon's
// config, and (unless noDaemon) starts the daemon.
func StartSite(t testing.TB, o SiteOpts, noDaemon bool) *Site {
	t.Helper()
	if o.MinUp == 0 {
		o.MinUp = 3
	}
	s := &Site{Opts: o, Backends: testenv.StartBackends(t, 5), DNSAddr: fmt.Sprintf("%s:%d", o.IP, o.DNSPort)}
	agentPort := testenv.FreePort(t)
	s.HAProxy = testenv.StartHAProxy(t, o.haproxyConfig(s.Backends, agentPort))
	s.CfgPath = WriteDaemonConfig(t, o, s.HAProxy.Socket, agentPort)
	if !noDaemon {
		s.Daemon = StartDaemon(t, s.CfgPath)
	}
	return s
}

// WriteDaemonConfig writes a daemon config for o (mode 0600) and returns its
// path.
func WriteDaemonConfig(t testing.TB, o SiteOpts, socket string, agentPort int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spdu-e2e-"+o.Name+"-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	text := fmt.Sprintf(`site = %q
[haproxy]
socket = %q
backend = "api"
poll_interval = "100ms"
stale_after = "500ms"
[health]
min_up = %d
rise = 2
fall = 2
[dns]
listen = ["%s:%d"]
zone = "pool.domain.tld."
ttl = "5s"
shutdown_grace = "0s"
nameservers = ["alpha.domain.tld.", "beta.domain.tld."]
[dns.records.api]
a = [%q]
[agent]
listen = "127.0.0.1:%d"
[metrics]
listen = "off"
[control]
socket = %q
state_file = %q
`, o.Name, socket, o.MinUp, o.IP, o.DNSPort, o.IP, agentPort, dir+"/control.sock", dir+"/state.json")
	p := filepath.Join(dir, o.Name+".toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Query asks addr for api.pool.domain.tld. A over UDP; it returns the rcode
// (-1 on no reply), the addresses and the time it took.
func Query(addr string, timeout time.Duration) (int, []string, time.Duration) {
	m := new(dns.Msg)
	m.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	start := time.Now()
	r, _, err := c.Exchange(m, addr)
	took := time.Since(start)
	if err != nil {
		return -1, nil, took
	}
	var addrs []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addrs = append(addrs, a.A.String())
		}
	}
	return r.Rcode, addrs, took
}

// Rcode is Query's rcode with a 300 ms timeout.
func Rcode(addr string) int {
	rc, _, _ := Query(addr, 300*time.Millisecond)
	return rc
}
