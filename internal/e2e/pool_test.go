package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// answers returns the sorted A addresses a site's nameserver hands out for
// the service name, and its rcode.
func answers(addr string) (int, []string) {
	rc, addrs, _ := testenv.Query(addr, 300*time.Millisecond)
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
	ss := testenv.NewSites(t, mode, map[string]string{"alpha": "127.0.0.2", "beta": "127.0.0.3", "gamma": "127.0.0.4"}, 0)
	ss.TTL = "5s"
	var sites []*site
	for _, name := range []string{"alpha", "beta", "gamma"} {
		sites = append(sites, startSite(t, ss.Opts(t, name), false))
	}
	all := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	// healthy is what site s hands out while every site is healthy.
	healthy := func(s *site) []string {
		if mode == "self" {
			return []string{s.IP}
		}
		return all
	}
	for _, s := range sites {
		testenv.Eventually(t, 15*time.Second, s.Name+" serves while all are healthy", func() bool {
			rc, got := answers(s.DNSAddr)
			return rc == dns.RcodeSuccess && slices.Equal(got, healthy(s))
		})
	}
	if mode == "self" {
		selfModeFailure(t, sites, healthy)
		return
	}

	alpha := sites[0]
	kill := time.Now()
	for _, be := range alpha.Backends {
		be.Stop()
	}
	peersOnly := []string{"127.0.0.3", "127.0.0.4"}
	for _, s := range sites[1:] {
		testenv.Eventually(t, 10*time.Second, s.Name+" drops alpha", func() bool {
			rc, got := answers(s.DNSAddr)
			return rc == dns.RcodeSuccess && slices.Equal(got, peersOnly)
		})
		took := time.Since(kill)
		t.Logf("alpha's backends killed -> %s drops alpha after %s", s.Name, took.Round(time.Millisecond))
		// alpha withdraws after fall polls (2 x 100 ms), its status says so,
		// and a peer's next probe (every 200 ms, timeout 150 ms) sees it.
		if bound := 2*100*time.Millisecond + 2*200*time.Millisecond + 150*time.Millisecond + 500*time.Millisecond; took > bound {
			t.Errorf("%s dropped alpha after %s, want within %s", s.Name, took, bound)
		}
	}
	testenv.Eventually(t, 10*time.Second, "alpha hands out its peers only", func() bool {
		rc, got := answers(alpha.DNSAddr)
		return rc == dns.RcodeSuccess && slices.Equal(got, peersOnly)
	})
	m := new(dns.Msg)
	m.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	if r, err := dns.Exchange(m, sites[1].DNSAddr); err != nil || len(r.Answer) == 0 || r.Answer[0].Header().Ttl > 1 {
		t.Errorf("right after a change the answer TTL should be ttl_unstable (1s): %v %v", r, err)
	}

	restore := time.Now()
	for _, be := range alpha.Backends {
		be.Start(t)
	}
	for _, s := range sites {
		testenv.Eventually(t, 15*time.Second, s.Name+" hands out all three again", func() bool {
			rc, got := answers(s.DNSAddr)
			return rc == dns.RcodeSuccess && slices.Equal(got, all)
		})
		t.Logf("alpha restored -> %s hands out all three after %s", s.Name, time.Since(restore).Round(time.Millisecond))
	}

	// A reload of alpha with a second address, a longer TTL and without
	// its peer gamma: alpha's own answers follow at once, without a
	// restart, and beta stays in them.
	text, err := os.ReadFile(alpha.CfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Index(string(text), "[[peers]]\nname = \"gamma\"")
	if cut < 0 {
		t.Fatalf("test bug: no gamma peer in\n%s", text)
	}
	next := strings.NewReplacer(`ttl = "5s"`, `ttl = "7s"`, `a = ["127.0.0.2"]`, `a = ["127.0.0.2", "127.0.0.12"]`).Replace(string(text[:cut]))
	if logs := testenv.Reload(t, alpha.Daemon, alpha.CfgPath, next, "configuration reloaded"); strings.Contains(logs, "next restart") {
		t.Errorf("alpha's reload deferred keys to a restart:\n%s", logs)
	}
	testenv.Eventually(t, 10*time.Second, "alpha hands out its new address and beta, not gamma, with the new TTL", func() bool {
		r, err := dns.Exchange(m, alpha.DNSAddr)
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
}

// selfModeFailure: alpha's backends die; its nameserver answers REFUSED and
// the others keep handing out their own sites; restored, alpha serves again.
func selfModeFailure(t *testing.T, sites []*site, healthy func(*site) []string) {
	alpha := sites[0]
	kill := time.Now()
	for _, be := range alpha.Backends {
		be.Stop()
	}
	testenv.Eventually(t, 10*time.Second, "alpha answers REFUSED", func() bool {
		rc, _ := answers(alpha.DNSAddr)
		return rc == dns.RcodeRefused
	})
	t.Logf("self mode: alpha's backends killed -> alpha REFUSED after %s", time.Since(kill).Round(time.Millisecond))
	for _, s := range sites[1:] {
		if rc, got := answers(s.DNSAddr); rc != dns.RcodeSuccess || !slices.Equal(got, healthy(s)) {
			t.Errorf("%s while alpha is down: rcode %d, %v; want its own site", s.Name, rc, got)
		}
	}
	for _, be := range alpha.Backends {
		be.Start(t)
	}
	testenv.Eventually(t, 10*time.Second, "alpha serves again", func() bool {
		rc, got := answers(alpha.DNSAddr)
		return rc == dns.RcodeSuccess && slices.Equal(got, healthy(alpha))
	})
}
