package resolvers

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// round is one resolution of a fresh name through one resolver while one
// of the pool's two nameservers misbehaves.
type round struct {
	res     Result
	toAlpha int // queries the misbehaving nameserver received for the name
}

// switchStats sums up the rounds of one resolver in one phase.
type switchStats struct {
	failed         int           // replies other than the healthy nameserver's address
	noReply        int           // rounds without a reply within clientTimeout
	first, max     time.Duration // latency of the first round, and the worst
	median         time.Duration
	askedAlpha     int // rounds in which the misbehaving nameserver was asked
	askedAlphaLate int // of those, in the second half of the rounds
	alphaQueries   int // queries it received in all rounds
}

func summarize(rounds []round, healthy string) switchStats {
	var s switchStats
	var took []time.Duration
	for i, r := range rounds {
		switch {
		case r.res.Rcode == NoReply:
			s.noReply++
		case !r.res.OK() || !slices.Equal(r.res.Addrs, []string{healthy}):
			s.failed++
		}
		took = append(took, r.res.Took)
		s.alphaQueries += r.toAlpha
		if r.toAlpha > 0 {
			s.askedAlpha++
			if i >= len(rounds)/2 {
				s.askedAlphaLate++
			}
		}
	}
	if len(took) > 0 {
		s.first = took[0]
		slices.Sort(took)
		s.median, s.max = took[len(took)/2], took[len(took)-1]
	}
	return s
}

// TestRefusedAndSilence measures how each resolver treats one of a zone's
// two nameservers that answers REFUSED, and one that is silent: with both
// nameservers known (a warm-up of fresh names), every round resolves a
// name never asked before, so no cache hides the nameserver choice; the
// stub counts how often the misbehaving one is still asked.
//
// Must hold: no resolver ever answers SERVFAIL or anything but the healthy
// nameserver's address (it always answers), and a REFUSED costs no timeout
// (every resolution within 300 ms of beta's delay, always with a reply).
// Under silence the first resolution waits for the resolver's own timeout;
// the latencies are reported. unbound (Debian 12's 1.17.1, with the
// CVE-2024-33655 fix) drops a client's query without a reply when its
// resolution took longer than discard-timeout (1.9 s): those are counted
// as "noreply", and not failures, since a client's retry gets the answer.
func TestRefusedAndSilence(t *testing.T) {
	const rounds = 10
	const betaDelay = 30 * time.Millisecond
	// glibc's stub resolver timeout; longer than any resolver here takes to
	// give up on a silent server, so the latency measured is the
	// resolver's, not the client's.
	const clientTimeout = 5 * time.Second
	h := StartHierarchy(t, HierarchyConfig{Pool: stubPool})
	alpha := StartStub(t, StubConfig{IP: stubPool[0].IP, Nameservers: stubPool})
	// Beta is 30 ms away and alpha next door, so the resolvers that pick
	// by round-trip time (BIND, PowerDNS, Knot Resolver) ask alpha first;
	// unbound picks at random among servers within 400 ms.
	beta := StartStub(t, StubConfig{IP: stubPool[1].IP, Nameservers: stubPool, Delay: betaDelay})
	rs := StartAll(t, h, resolverIPs, Options{})
	var report strings.Builder
	fmt.Fprintf(&report, "\n%-14s %-8s %6s %7s %9s %9s %9s %12s %14s\n", "resolver", "alpha", "failed", "noreply", "first", "median", "max", "rounds alpha", "(late) queries")
	for i, mode := range []StubMode{StubRefuse, StubSilent} {
		name := map[StubMode]string{StubRefuse: "REFUSED", StubSilent: "silent"}[mode]
		alpha.SetMode(StubAnswer)
		for _, r := range rs {
			r.Restart(t)
		}
		stats := map[Kind]switchStats{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, r := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Warm-up: four fresh names with both answering, so that
				// the resolver has asked (and timed) both nameservers.
				for j := range 4 {
					Resolve(r.Addr, fmt.Sprintf("w%d-%d.%s", i, j, PoolZone), dns.TypeA, clientTimeout)
				}
			}()
		}
		wg.Wait()
		alpha.SetMode(mode)
		for _, r := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var rr []round
				for j := range rounds {
					qname := fmt.Sprintf("m%d-%d.%s", i, j, PoolZone)
					start := time.Now()
					res := Resolve(r.Addr, qname, dns.TypeA, clientTimeout)
					n := 0
					for _, q := range alpha.QueriesFrom(r.IP, start) {
						if q.Name == qname {
							n++
						}
					}
					rr = append(rr, round{res: res, toAlpha: n})
				}
				mu.Lock()
				stats[r.Kind] = summarize(rr, stubPool[1].IP)
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, r := range rs {
			s := stats[r.Kind]
			fmt.Fprintf(&report, "%-14s %-8s %3d/%-2d %7d %9s %9s %9s %12d %6d %7d\n", r.Kind, name, s.failed, rounds, s.noReply,
				s.first.Round(time.Millisecond), s.median.Round(time.Millisecond), s.max.Round(time.Millisecond), s.askedAlpha, s.askedAlphaLate, s.alphaQueries)
			if s.failed > 0 {
				t.Errorf("%s with alpha %s: %d of %d resolutions failed although beta answered", r.Kind, name, s.failed, rounds)
			}
			if mode == StubRefuse && s.noReply > 0 {
				t.Errorf("%s with alpha REFUSED: %d of %d resolutions got no reply within %s", r.Kind, s.noReply, rounds, clientTimeout)
			}
			if mode == StubRefuse && s.max > betaDelay+300*time.Millisecond {
				t.Errorf("%s with alpha REFUSED: a resolution took %s; a REFUSED should cost no timeout", r.Kind, s.max)
			}
		}
	}
	if len(beta.Queries()) == 0 {
		t.Error("beta saw no query")
	}
	t.Log(report.String())
}
