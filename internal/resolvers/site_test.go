package resolvers

import (
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunWithBinary(m)) }

// The two sites of the research test: each site's public address is its
// nameserver's, port 53, as the parent's glue says.
var sitePool = []Nameserver{{Name: "alpha.domain.tld.", IP: "127.0.0.2"}, {Name: "beta.domain.tld.", IP: "127.0.0.3"}}

// site is one site of the research test: five backends, an HAProxy with a
// TLS frontend on the site's address (its peer's probe path, and the spdu
// status at /.well-known/spdu/status), and the real daemon.
type site struct {
	*testenv.Site
	name, ip string
	daemon   *testenv.Process
}

// newSites is testenv.NewSites for alpha (127.0.0.2) and beta (127.0.0.3)
// in mode, their nameservers on port 53, with dns.ttl ttl.
func newSites(t *testing.T, mode string, ttl time.Duration) *testenv.Sites {
	t.Helper()
	ss := testenv.NewSites(t, mode, map[string]string{"alpha": sitePool[0].IP, "beta": sitePool[1].IP}, 53)
	ss.TTL = ttl.String()
	return ss
}

// startSites starts alpha and beta of ss, each with the configuration
// extra[name] appended, and returns once both hand out what a healthy pair
// does (its own address in self mode, both in pool mode).
func startSites(t *testing.T, ss *testenv.Sites, extra map[string]string) (alpha, beta *site) {
	t.Helper()
	start := func(name string) *site {
		o := ss.Opts(t, name)
		o.HAProxy.AgentInter, o.HAProxy.Connect = 500*time.Millisecond, 300*time.Millisecond
		o.Daemon.Extra += extra[name]
		s := &site{Site: testenv.StartSite(t, o), name: name, ip: o.IP}
		s.startDaemon(t)
		return s
	}
	alpha, beta = start("alpha"), start("beta")
	for _, s := range []*site{alpha, beta} {
		want := []string{s.ip}
		if ss.Mode == "pool" {
			want = []string{alpha.ip, beta.ip}
		}
		waitAnswers(t, s.DNSAddr, s.name+" serves", 15*time.Second, want...)
	}
	return alpha, beta
}

// waitAnswers waits at most timeout (failing the test as what) until the
// nameserver at addr answers PoolServiceName with NOERROR and exactly the
// addresses want, in any order.
func waitAnswers(t *testing.T, addr, what string, timeout time.Duration, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	testenv.Eventually(t, timeout, what, func() bool {
		rc, got := siteAnswer(addr)
		return rc == dns.RcodeSuccess && slices.Equal(got, want)
	})
}

func (s *site) startDaemon(t *testing.T) {
	t.Helper()
	s.daemon = testenv.StartBinary(t, "run", "-config", s.CfgPath)
}

// withdraw stops every backend: the site falls below min_up.
func (s *site) withdraw() {
	for _, b := range s.Backends {
		b.Stop()
	}
}

// recover starts the backends again.
func (s *site) recover(t *testing.T) {
	t.Helper()
	for _, b := range s.Backends {
		b.Start(t)
	}
}

// stop sends the daemon SIGTERM: it answers the zone with the withdraw
// rcode (self mode) or its peers (pool mode) for dns.shutdown_grace, then
// exits.
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
	s.HAProxy.Kill()
}

// siteAnswer asks a site's nameserver directly for the service name and
// returns the rcode (NoReply on none) and the sorted addresses.
func siteAnswer(addr string) (int, []string) {
	r := Resolve(addr, PoolServiceName, dns.TypeA, 300*time.Millisecond)
	slices.Sort(r.Addrs)
	return r.Rcode, r.Addrs
}
