package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// poolSite is one site of the pool-mode test: backends, an HAProxy with a
// TLS frontend on the site's own loopback address, and the daemon.
type poolSite struct {
	name, ip string
	backends []*testenv.Backend
	hap      *testenv.HAProxy
	daemon   *Daemon
	cfgPath  string
	dnsAddr  string
}

// poolTest holds the shared ports and the test CA.
type poolTest struct {
	mode               string // dns.mode: "pool" or "self"
	dnsPort, httpsPort int
	ca                 *testenv.TestCA
	caFile             string
}

func (pt *poolTest) haproxyConfig(ip string, backends []*testenv.Backend, agentPort, metricsPort int) string {
	var b strings.Builder
	pem := filepath.Join(filepath.Dir(pt.caFile), "site.pem")
	b.WriteString(testenv.HAProxyPreamble(300 * time.Millisecond))
	fmt.Fprintf(&b, `frontend www
    bind %s:%d ssl crt %s
    # The site's spdu status, published along the real path for its peers.
    http-request set-var(txn.spdu) bool(true) if { path /.well-known/spdu/status }
    http-request set-path /status if { var(txn.spdu) -m bool }
    use_backend spdu_status if { var(txn.spdu) -m bool }
    default_backend api
backend spdu_status
    server local 127.0.0.1:%d
backend api
    balance roundrobin
    option httpchk GET /status
`, ip, pt.httpsPort, pem, metricsPort)
	b.WriteString(testenv.ServerLines(backends, agentPort, 500*time.Millisecond))
	return b.String()
}

func (pt *poolTest) daemonConfig(t *testing.T, name, ip string, socket string, agentPort, metricsPort int, peers map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spdu-pool-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var b strings.Builder
	fmt.Fprintf(&b, `site = %q
[haproxy]
socket = %q
backend = "api"
poll_interval = "100ms"
stale_after = "500ms"
[health]
min_up = 3
[dns]
listen = ["%s:%d"]
zone = "pool.domain.tld."
ttl = "5s"
ttl_unstable = "1s"
mode = %q
shutdown_grace = "0s"
nameservers = ["alpha.domain.tld.", "beta.domain.tld.", "gamma.domain.tld."]
[dns.records.api]
a = [%q]
[agent]
listen = "127.0.0.1:%d"
[metrics]
listen = "127.0.0.1:%d"
[control]
socket = "%s/control.sock"
state_file = "%s/state.json"
`, name, socket, ip, pt.dnsPort, pt.mode, ip, agentPort, metricsPort, dir, dir)
	if pt.mode == "self" {
		peers = nil // self mode never hands out peers; listing them is a config error
	}
	names := make([]string, 0, len(peers))
	for n := range peers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		pip := peers[n]
		base := fmt.Sprintf("https://%s:%d", pip, pt.httpsPort)
		fmt.Fprintf(&b, `[[peers]]
name = %q
a = [%q]
probe = "%s/status"
host = "api.domain.tld"
status_url = "%s/.well-known/spdu/status"
interval = "200ms"
timeout = "150ms"
ca_file = %q
`, n, pip, base, base, pt.caFile)
	}
	p := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// answers returns the sorted A addresses a site's nameserver hands out for
// the service name, and its rcode.
func answers(addr string) (int, []string) {
	rc, addrs, _ := Query(addr, 300*time.Millisecond)
	slices.Sort(addrs)
	return rc, addrs
}

// TestThreeSites runs three sites in both modes, each site with its own
// HAProxy (TLS frontend on its own loopback address), backends and daemon.
//
// Pool mode: every nameserver hands out all three while healthy; when one
// site's backends die the others drop it, and its own nameserver hands out
// the two peers only. Self mode: every nameserver hands out its own site;
// the failed site's nameserver answers REFUSED, the others are unaffected.
// Restored: everything returns.
func TestThreeSites(t *testing.T) {
	for _, mode := range []string{"pool", "self"} {
		t.Run(mode, func(t *testing.T) { threeSites(t, mode) })
	}
}

func threeSites(t *testing.T, mode string) {
	pt := &poolTest{mode: mode, dnsPort: testenv.FreePort(t), httpsPort: testenv.FreePort(t)}
	pt.ca = testenv.NewTestCA(t, []string{"api.domain.tld"})
	dir, err := os.MkdirTemp("", "spdu-pool-ca-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pt.caFile = filepath.Join(dir, "ca.pem")
	for _, f := range []string{pt.caFile, filepath.Join(dir, "site.pem")} {
		if err := os.WriteFile(f, pt.ca.PEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ips := map[string]string{"alpha": "127.0.0.2", "beta": "127.0.0.3", "gamma": "127.0.0.4"}
	var sites []*poolSite
	for _, name := range []string{"alpha", "beta", "gamma"} {
		s := &poolSite{name: name, ip: ips[name], backends: testenv.StartBackends(t, 5)}
		agentPort, metricsPort := testenv.FreePort(t), testenv.FreePort(t)
		s.hap = testenv.StartHAProxy(t, pt.haproxyConfig(s.ip, s.backends, agentPort, metricsPort))
		peers := map[string]string{}
		for n, ip := range ips {
			if n != name {
				peers[n] = ip
			}
		}
		s.cfgPath = pt.daemonConfig(t, name, s.ip, s.hap.Socket, agentPort, metricsPort, peers)
		s.dnsAddr = fmt.Sprintf("%s:%d", s.ip, pt.dnsPort)
		s.daemon = StartDaemon(t, s.cfgPath)
		sites = append(sites, s)
	}
	all := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	// healthy is what site s hands out while every site is healthy.
	healthy := func(s *poolSite) []string {
		if mode == "self" {
			return []string{s.ip}
		}
		return all
	}
	for _, s := range sites {
		testenv.Eventually(t, 15*time.Second, s.name+" serves while all are healthy", func() bool {
			rc, got := answers(s.dnsAddr)
			return rc == dns.RcodeSuccess && slices.Equal(got, healthy(s))
		})
	}
	if mode == "self" {
		selfModeFailure(t, sites, healthy)
		return
	}

	alpha := sites[0]
	kill := time.Now()
	for _, be := range alpha.backends {
		be.Stop()
	}
	peersOnly := []string{"127.0.0.3", "127.0.0.4"}
	for _, s := range sites[1:] {
		testenv.Eventually(t, 10*time.Second, s.name+" drops alpha", func() bool {
			rc, got := answers(s.dnsAddr)
			return rc == dns.RcodeSuccess && slices.Equal(got, peersOnly)
		})
		took := time.Since(kill)
		t.Logf("alpha's backends killed -> %s drops alpha after %s", s.name, took.Round(time.Millisecond))
		// alpha withdraws after fall polls (2 x 100 ms), its status says so,
		// and a peer's next probe (every 200 ms, timeout 150 ms) sees it.
		if bound := 2*100*time.Millisecond + 2*200*time.Millisecond + 150*time.Millisecond + 500*time.Millisecond; took > bound {
			t.Errorf("%s dropped alpha after %s, want within %s", s.name, took, bound)
		}
	}
	testenv.Eventually(t, 10*time.Second, "alpha hands out its peers only", func() bool {
		rc, got := answers(alpha.dnsAddr)
		return rc == dns.RcodeSuccess && slices.Equal(got, peersOnly)
	})
	m := new(dns.Msg)
	m.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	if r, err := dns.Exchange(m, sites[1].dnsAddr); err != nil || len(r.Answer) == 0 || r.Answer[0].Header().Ttl > 1 {
		t.Errorf("right after a change the answer TTL should be ttl_unstable (1s): %v %v", r, err)
	}

	restore := time.Now()
	for _, be := range alpha.backends {
		be.Start(t)
	}
	for _, s := range sites {
		testenv.Eventually(t, 15*time.Second, s.name+" hands out all three again", func() bool {
			rc, got := answers(s.dnsAddr)
			return rc == dns.RcodeSuccess && slices.Equal(got, all)
		})
		t.Logf("alpha restored -> %s hands out all three after %s", s.name, time.Since(restore).Round(time.Millisecond))
	}

	// A reload of alpha with a second address, a longer TTL and without
	// its peer gamma: alpha's own answers follow at once, without a
	// restart, and beta stays in them.
	text, err := os.ReadFile(alpha.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Index(string(text), "[[peers]]\nname = \"gamma\"")
	if cut < 0 {
		t.Fatalf("test bug: no gamma peer in\n%s", text)
	}
	next := strings.NewReplacer(`ttl = "5s"`, `ttl = "7s"`, `a = ["127.0.0.2"]`, `a = ["127.0.0.2", "127.0.0.12"]`).Replace(string(text[:cut]))
	if err := os.WriteFile(alpha.cfgPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := alpha.daemon.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "alpha hands out its new address and beta, not gamma, with the new TTL", func() bool {
		r, err := dns.Exchange(m, alpha.dnsAddr)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 || r.Answer[0].Header().Ttl != 7 {
			return false
		}
		var got []string
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.A.String())
			}
		}
		slices.Sort(got)
		return slices.Equal(got, []string{"127.0.0.12", "127.0.0.2", "127.0.0.3"})
	})
	if out := alpha.daemon.Output(); strings.Contains(out, "next restart") {
		t.Errorf("alpha's reload deferred keys to a restart:\n%s", out)
	}
}

// selfModeFailure: alpha's backends die; its nameserver answers REFUSED and
// the others keep handing out their own sites; restored, alpha serves again.
func selfModeFailure(t *testing.T, sites []*poolSite, healthy func(*poolSite) []string) {
	alpha := sites[0]
	kill := time.Now()
	for _, be := range alpha.backends {
		be.Stop()
	}
	testenv.Eventually(t, 10*time.Second, "alpha answers REFUSED", func() bool {
		rc, _ := answers(alpha.dnsAddr)
		return rc == dns.RcodeRefused
	})
	t.Logf("self mode: alpha's backends killed -> alpha REFUSED after %s", time.Since(kill).Round(time.Millisecond))
	for _, s := range sites[1:] {
		if rc, got := answers(s.dnsAddr); rc != dns.RcodeSuccess || !slices.Equal(got, healthy(s)) {
			t.Errorf("%s while alpha is down: rcode %d, %v; want its own site", s.name, rc, got)
		}
	}
	for _, be := range alpha.backends {
		be.Start(t)
	}
	testenv.Eventually(t, 10*time.Second, "alpha serves again", func() bool {
		rc, got := answers(alpha.dnsAddr)
		return rc == dns.RcodeSuccess && slices.Equal(got, healthy(alpha))
	})
}
