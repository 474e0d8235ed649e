// Package pool owns the multi-site answer policy: from the local site's
// health and the peer probes it decides which sites' addresses the pool zone
// hands out, whether to refuse instead, how to order the addresses by spare
// capacity, and whether the answer is unstable (and so gets the short TTL).
// Decide, Orders and Stability are pure: no sockets, no clock of their own.
// The Publisher runs them, in self mode too (self mode is pool mode without
// peers), and hands each outcome on: it is the one answer path. The package
// does not probe and does not write DNS messages.
package pool

import (
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/spdu/spdu-haproxy/internal/config"
)

// Member is one site as the policy sees it.
type Member struct {
	// Name is the site's name.
	Name string
	// A and AAAA are the site's addresses.
	A, AAAA []netip.Addr
	// Up is the site's health: for the local site the health policy's
	// decision, for a peer its probe's.
	Up bool
	// Capacity is the spare capacity from 0 to 1 (health.Capacity for this
	// site, the status document's for a peer).
	Capacity float64
	// Settled is false while a rise or fall count is under way.
	Settled bool
	// Shed is the fraction of new clients the site sends elsewhere, 0 to
	// 1 (its Capacity is already lowered by it).
	Shed float64
}

// Answer is the decision for the zone's service names.
type Answer struct {
	// Refuse means every zone query gets the withdraw rcode.
	Refuse bool
	// Members are the sites whose addresses are handed out, each with the
	// weight its addresses are ordered by (their Capacity; all 1 when
	// failing open).
	Members []Member
	// Unstable asks for the short TTL: some site is between states.
	Unstable bool
	// Shed is this site's shed fraction in self mode, where it acts per
	// query (pool mode lowers the site's capacity instead); 0 when
	// refusing.
	Shed float64
}

// Decide applies the mode to the local site and the peers. In self mode the
// peers are ignored (self mode is pool mode without peers) and the answer
// is never unstable. A site with zero
// capacity is left out as if down (a peer that says it is withdrawn or
// drained).
func Decide(mode config.DNSMode, allDown config.AllDown, self Member, peers []Member) Answer {
	// Only pool mode has a short TTL for unstable answers; in self mode
	// the answer is the site's own records or a refusal.
	unstable := mode == config.ModePool && !self.Settled
	var members []Member
	if self.Up && self.Capacity > 0 {
		members = append(members, self)
	}
	if mode == config.ModePool {
		for _, p := range peers {
			unstable = unstable || !p.Settled
			if p.Up && p.Capacity > 0 {
				members = append(members, p)
			}
		}
	}
	switch {
	case len(members) > 0 && mode == config.ModeSelf:
		return Answer{Members: members, Shed: self.Shed}
	case len(members) > 0:
		return Answer{Members: members, Unstable: unstable}
	case mode == config.ModePool && allDown == config.AllDownAll:
		all := append([]Member{self}, peers...)
		for i := range all {
			all[i].Capacity = 1
		}
		return Answer{Members: all, Unstable: unstable}
	default:
		return Answer{Refuse: true, Unstable: unstable}
	}
}

// Same reports whether two answers hand out the same sites (by name, in any
// order) or both refuse; capacities and stability are not compared.
func Same(a, b Answer) bool {
	if a.Refuse != b.Refuse || len(a.Members) != len(b.Members) {
		return false
	}
	names := make(map[string]bool, len(a.Members))
	for _, m := range a.Members {
		names[m.Name] = true
	}
	for _, m := range b.Members {
		if !names[m.Name] {
			return false
		}
	}
	return true
}

// Stability remembers when the answer last changed, so that an answer stays
// unstable (short TTL) for a while after each change: caches must not hold
// a just-changed answer for long (the idea of gdnsd's dynamic TTLs). Not safe
// for concurrent use.
type Stability struct {
	// Window is how long after a change the answer counts as unstable;
	// typically the normal TTL.
	Window  time.Duration
	last    Answer
	changed time.Time
	started bool
}

// Update records a at now and returns it with Unstable set if a differs from
// the previous answer or the previous change is younger than Window.
func (s *Stability) Update(now time.Time, a Answer) Answer {
	if !s.started || !Same(s.last, a) {
		s.changed = now
		s.started = true
	}
	s.last = a
	if now.Sub(s.changed) < s.Window {
		a.Unstable = true
	}
	return a
}

// Orders returns n orderings of indexes 0..len(weights)-1, for weighted
// random order per response (like PowerDNS pickwrandom): over the n
// orderings, index i comes first in a share of them proportional to
// weights[i] (exactly, up to rounding to 1/n by largest remainder), and the
// rest of each ordering is drawn at random with probability proportional to
// weight. A server that picks one of the orderings uniformly per response
// therefore hands out first addresses in the capacity ratio. Zero or
// negative weights count as a tiny positive weight. rng makes it
// reproducible in tests.
func Orders(weights []float64, n int, rng *rand.Rand) [][]int {
	k := len(weights)
	if k == 0 || n <= 0 {
		return nil
	}
	w := make([]float64, k)
	sum := 0.0
	for i, x := range weights {
		w[i] = max(x, 1e-9)
		sum += w[i]
	}
	// First positions by largest remainder.
	firsts := make([]int, k)
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, k)
	given := 0
	for i := range w {
		exact := w[i] / sum * float64(n)
		firsts[i] = int(exact)
		given += firsts[i]
		rems[i] = rem{i, exact - float64(firsts[i])}
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for j := 0; given < n; j++ {
		firsts[rems[j%k].i]++
		given++
	}
	out := make([][]int, 0, n)
	for i := range k {
		for range firsts[i] {
			out = append(out, weightedOrder(w, i, rng))
		}
	}
	rng.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

// weightedOrder returns first followed by the other indexes drawn without
// replacement with probability proportional to w.
func weightedOrder(w []float64, first int, rng *rand.Rand) []int {
	order := []int{first}
	left := make([]int, 0, len(w)-1)
	for i := range w {
		if i != first {
			left = append(left, i)
		}
	}
	for len(left) > 0 {
		total := 0.0
		for _, i := range left {
			total += w[i]
		}
		x := rng.Float64() * total
		pick := len(left) - 1
		for j, i := range left {
			x -= w[i]
			if x < 0 {
				pick = j
				break
			}
		}
		order = append(order, left[pick])
		left = append(left[:pick], left[pick+1:]...)
	}
	return order
}
