package resolvers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// daemonBinary is the spdu-haproxy binary TestMain builds.
var daemonBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spdu-resolvers-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
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

// The two sites of the research test: each site's public address is its
// nameserver's, port 53, as the parent's glue says.
var sitePool = []Nameserver{{Name: "alpha.domain.tld.", IP: "127.0.0.2"}, {Name: "beta.domain.tld.", IP: "127.0.0.3"}}

// site is one site of the research test: five backends, an HAProxy with a
// TLS frontend on the site's address (its peer's probe path, and the spdu
// status at /.well-known/spdu/status), and the real daemon.
type site struct {
	name, ip string
	backends []*testenv.Backend
	hap      *testenv.HAProxy
	daemon   *testenv.Process
	cfgPath  string
	dnsAddr  string
}

// siteSet holds what the sites share.
type siteSet struct {
	mode      string // dns.mode: "self" or "pool"
	ttl       time.Duration
	grace     time.Duration // dns.shutdown_grace
	httpsPort int
	caFile    string
	pemFile   string
}

// startSites starts alpha (127.0.0.2) and beta (127.0.0.3) in mode with
// dns.ttl ttl and dns.shutdown_grace grace, and returns once both
// nameservers hand out what a healthy pair does (its own address in self
// mode, both in pool mode).
func startSites(t *testing.T, mode string, ttl, grace time.Duration) (alpha, beta *site) {
	t.Helper()
	ss := &siteSet{mode: mode, ttl: ttl, grace: grace, httpsPort: testenv.FreePort(t)}
	ca := testenv.NewTestCA(t, []string{"api.domain.tld"})
	dir := tempDir(t, "spdu-res-ca-")
	ss.caFile, ss.pemFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "site.pem")
	for _, f := range []string{ss.caFile, ss.pemFile} {
		if err := os.WriteFile(f, ca.PEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	alpha = ss.start(t, sitePool[0], sitePool[1])
	beta = ss.start(t, sitePool[1], sitePool[0])
	for _, s := range []*site{alpha, beta} {
		want := []string{s.ip}
		if mode == "pool" {
			want = []string{alpha.ip, beta.ip}
		}
		testenv.Eventually(t, 15*time.Second, s.name+" serves", func() bool {
			rc, got := siteAnswer(s.dnsAddr)
			return rc == dns.RcodeSuccess && slices.Equal(got, want)
		})
	}
	return alpha, beta
}

func (ss *siteSet) start(t *testing.T, self, peer Nameserver) *site {
	t.Helper()
	name := strings.TrimSuffix(self.Name, ".domain.tld.")
	s := &site{name: name, ip: self.IP, backends: testenv.StartBackends(t, 5), dnsAddr: self.IP + ":53"}
	agentPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
	s.hap = testenv.StartHAProxy(t, ss.haproxyConfig(s, agentPort, metricsPort))
	s.cfgPath = ss.daemonConfig(t, s, agentPort, metricsPort, strings.TrimSuffix(peer.Name, ".domain.tld."), peer.IP)
	s.startDaemon(t)
	return s
}

func (s *site) startDaemon(t *testing.T) {
	t.Helper()
	s.daemon = testenv.StartProcess(t, exec.Command(daemonBinary, "run", "-config", s.cfgPath))
}

// withdraw stops every backend: the site falls below min_up.
func (s *site) withdraw() {
	for _, b := range s.backends {
		b.Stop()
	}
}

// recover starts the backends again.
func (s *site) recover(t *testing.T) {
	t.Helper()
	for _, b := range s.backends {
		b.Start(t)
	}
}

// stop sends the daemon SIGTERM: it answers the zone with the withdraw
// rcode for dns.shutdown_grace, then exits.
func (s *site) stop(t *testing.T) {
	t.Helper()
	if err := s.daemon.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// kill kills the daemon and HAProxy: the site is gone and its nameserver
// silent.
func (s *site) kill() {
	s.daemon.Kill()
	s.hap.Kill()
}

func (ss *siteSet) haproxyConfig(s *site, agentPort, metricsPort int) string {
	var b strings.Builder
	b.WriteString(testenv.HAProxyPreamble(300 * time.Millisecond))
	fmt.Fprintf(&b, `frontend www
    bind %s:%d ssl crt %s
    http-request set-var(txn.spdu) bool(true) if { path /.well-known/spdu/status }
    http-request set-path /status if { var(txn.spdu) -m bool }
    use_backend spdu_status if { var(txn.spdu) -m bool }
    default_backend api
backend spdu_status
    server local 127.0.0.1:%d
backend api
    balance roundrobin
    option httpchk GET /status
`, s.ip, ss.httpsPort, ss.pemFile, metricsPort)
	b.WriteString(testenv.ServerLines(s.backends, agentPort, 500*time.Millisecond))
	return b.String()
}

// daemonConfig writes the site's daemon configuration (mode 0600): the
// README's settings with test intervals (poll 100 ms, peer probe 200 ms),
// min_up 3 of 5, dns.ttl ss.ttl, ttl_unstable 1s, dns.shutdown_grace
// ss.grace.
func (ss *siteSet) daemonConfig(t *testing.T, s *site, agentPort, metricsPort int, peerName, peerIP string) string {
	t.Helper()
	dir := tempDir(t, "spdu-res-"+s.name+"-")
	var b strings.Builder
	fmt.Fprintf(&b, `site = %q
[haproxy]
socket = %q
backend = "api"
poll_interval = "100ms"
stale_after = "500ms"
[health]
min_up = 3
rise = 2
fall = 2
[dns]
listen = ["%s:53"]
zone = %q
ttl = "%ds"
ttl_unstable = "1s"
mode = %q
shutdown_grace = "%ds"
nameservers = ["alpha.domain.tld.", "beta.domain.tld."]
[dns.records.api]
a = [%q]
[agent]
listen = "127.0.0.1:%d"
[metrics]
listen = "127.0.0.1:%d"
[control]
socket = "%s/control.sock"
state_file = "%s/state.json"
`, s.name, s.hap.Socket, s.ip, PoolZone, int(ss.ttl/time.Second), ss.mode, int(ss.grace/time.Second), s.ip, agentPort, metricsPort, dir, dir)
	if ss.mode == "pool" {
		base := fmt.Sprintf("https://%s:%d", peerIP, ss.httpsPort)
		fmt.Fprintf(&b, `[[peers]]
name = %q
a = [%q]
probe = "%s/status"
host = "api.domain.tld"
status_url = "%s/.well-known/spdu/status"
interval = "200ms"
timeout = "150ms"
ca_file = %q
`, peerName, peerIP, base, base, ss.caFile)
	}
	p := filepath.Join(dir, s.name+".toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// siteAnswer asks a site's nameserver directly for the service name and
// returns the rcode (NoReply on none) and the sorted addresses.
func siteAnswer(addr string) (int, []string) {
	r := Resolve(addr, PoolServiceName, dns.TypeA, 300*time.Millisecond)
	slices.Sort(r.Addrs)
	return r.Rcode, r.Addrs
}
