package pool

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/spdu/spdu-haproxy/internal/config"
)

// Short names for the configuration enums the policy takes.
const (
	Self   = config.ModeSelf
	Pool   = config.ModePool
	Refuse = config.AllDownRefuse
	All    = config.AllDownAll
)

func member(name string, up bool, capacity float64) Member {
	return Member{Name: name, A: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Up: up, Capacity: capacity, Settled: true}
}

func names(a Answer) []string {
	var out []string
	for _, m := range a.Members {
		out = append(out, m.Name)
	}
	return out
}

// TestDecideTable: mode x own state x peer states x all_down.
func TestDecideTable(t *testing.T) {
	up, down := true, false
	for _, tc := range []struct {
		name    string
		mode    config.DNSMode
		allDown config.AllDown
		self    bool
		peers   []bool
		refuse  bool
		want    []string
	}{
		{"self mode, healthy", Self, Refuse, up, []bool{up, up}, false, []string{"alpha"}},
		{"self mode, healthy, peers down", Self, Refuse, up, []bool{down, down}, false, []string{"alpha"}},
		{"self mode, withdrawn", Self, Refuse, down, []bool{up, up}, true, nil},
		{"self mode ignores all_down", Self, All, down, []bool{down, down}, true, nil},
		{"pool, all up", Pool, Refuse, up, []bool{up, up}, false, []string{"alpha", "beta", "gamma"}},
		{"pool, one peer down", Pool, Refuse, up, []bool{up, down}, false, []string{"alpha", "beta"}},
		{"pool, peers down", Pool, Refuse, up, []bool{down, down}, false, []string{"alpha"}},
		{"pool, self down, peers up", Pool, Refuse, down, []bool{up, up}, false, []string{"beta", "gamma"}},
		{"pool, self down, one peer up", Pool, Refuse, down, []bool{down, up}, false, []string{"gamma"}},
		{"pool, all down, refuse", Pool, Refuse, down, []bool{down, down}, true, nil},
		{"pool, all down, fail open", Pool, All, down, []bool{down, down}, false, []string{"alpha", "beta", "gamma"}},
		{"pool, no peers, self down, fail open", Pool, All, down, nil, false, []string{"alpha"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var peers []Member
			for i, u := range tc.peers {
				peers = append(peers, member([]string{"beta", "gamma"}[i], u, 1))
			}
			got := Decide(tc.mode, tc.allDown, member("alpha", tc.self, 1), peers)
			if got.Refuse != tc.refuse {
				t.Errorf("Refuse = %v, want %v", got.Refuse, tc.refuse)
			}
			if diff := cmp.Diff(tc.want, names(got)); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideCapacityAndStability(t *testing.T) {
	self := member("alpha", true, 1)
	empty := member("beta", true, 0) // says it is drained
	got := Decide(Pool, Refuse, self, []Member{empty})
	if diff := cmp.Diff([]string{"alpha"}, names(got)); diff != "" {
		t.Errorf("a zero-capacity peer is handed out (-want +got):\n%s", diff)
	}
	rising := member("beta", false, 1)
	rising.Settled = false
	if got := Decide(Pool, Refuse, self, []Member{rising}); !got.Unstable {
		t.Error("a peer between states does not make the answer unstable")
	}
	if got := Decide(Self, Refuse, self, []Member{rising}); got.Unstable {
		t.Error("self mode is unstable because of a peer it ignores")
	}
	self.Settled = false
	if got := Decide(Self, Refuse, self, nil); got.Unstable {
		t.Error("self mode is unstable: it has no short TTL")
	}
	fo := Decide(Pool, All, member("alpha", false, 0.2), []Member{member("beta", false, 0)})
	for _, m := range fo.Members {
		if m.Capacity != 1 {
			t.Errorf("fail-open member %s weight %v, want 1", m.Name, m.Capacity)
		}
	}
}

func TestStability(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	s := Stability{Window: 5 * time.Second}
	a := Answer{Members: []Member{member("alpha", true, 1)}}
	b := Answer{Members: []Member{member("alpha", true, 1), member("beta", true, 1)}}
	for _, step := range []struct {
		at       time.Duration
		ans      Answer
		unstable bool
	}{
		{0, a, true}, // start-up counts as a change
		{4 * time.Second, a, true},
		{6 * time.Second, a, false},
		{7 * time.Second, b, true},
		{11 * time.Second, b, true},
		{12 * time.Second, b, false},
		{13 * time.Second, Answer{Refuse: true}, true},
	} {
		if got := s.Update(t0.Add(step.at), step.ans); got.Unstable != step.unstable {
			t.Errorf("at %s: Unstable = %v, want %v", step.at, got.Unstable, step.unstable)
		}
	}
}

// TestOrdersDistribution: with capacities 5/5 and 2/5, the first address
// over 10,000 answers that each pick one of the orderings at random follows
// the ratio 5:2 within 2 percentage points.
func TestOrdersDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	orders := Orders([]float64{1, 0.4}, 64, rng)
	if len(orders) != 64 {
		t.Fatalf("%d orderings, want 64", len(orders))
	}
	first := [2]int{}
	for range 10000 {
		o := orders[rng.IntN(len(orders))]
		if len(o) != 2 || o[0] == o[1] {
			t.Fatalf("ordering %v is not a permutation", o)
		}
		first[o[0]]++
	}
	share := float64(first[0]) / 10000
	want := 1 / 1.4
	if d := share - want; d > 0.02 || d < -0.02 {
		t.Errorf("full site first in %.3f of answers, want %.3f +- 0.02", share, want)
	}
	t.Logf("first address: full site %d, 2/5 site %d of 10000 (want ratio %.3f, got %.3f)", first[0], first[1], want, share)
}

func TestOrdersExactFirsts(t *testing.T) {
	orders := Orders([]float64{3, 1, 0}, 8, rand.New(rand.NewPCG(1, 1)))
	count := map[int]int{}
	for _, o := range orders {
		count[o[0]]++
		if len(o) != 3 {
			t.Fatalf("ordering %v lacks members", o)
		}
	}
	if diff := cmp.Diff(map[int]int{0: 6, 1: 2}, count); diff != "" {
		t.Errorf("first positions (-want +got):\n%s", diff)
	}
	if Orders(nil, 8, rand.New(rand.NewPCG(1, 1))) != nil {
		t.Error("orders of nothing")
	}
}

func TestPublisher(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	now := t0
	self := member("alpha", true, 1)
	peer := member("beta", true, 1)
	var got []Published
	p := NewPublisher(Policy{Mode: Pool, AllDown: Refuse, Interval: time.Second, Window: 5 * time.Second},
		func() Member { return self }, func() []Member { return []Member{peer} },
		func(pub Published) { got = append(got, pub) })
	p.now = func() time.Time { return now }
	p.rng = rand.New(rand.NewPCG(3, 4))

	p.Evaluate()
	if len(got) != 1 || !got[0].Answer.Unstable || len(got[0].Orders) != OrdersPerAnswer {
		t.Fatalf("first publish %+v", got)
	}
	now = t0.Add(time.Second)
	p.Evaluate() // nothing changed, still unstable: no publish
	if len(got) != 1 {
		t.Fatalf("published without a change: %d", len(got))
	}
	now = t0.Add(6 * time.Second)
	p.Evaluate() // became stable
	if len(got) != 2 || got[1].Answer.Unstable {
		t.Fatalf("stable publish missing: %+v", got[len(got)-1].Answer)
	}
	peer.Capacity = 0.4 // capacity change re-orders without a membership change
	p.Evaluate()
	if len(got) != 3 || got[2].Answer.Unstable {
		t.Fatalf("capacity change: %d publishes, last %+v", len(got), got[len(got)-1].Answer)
	}
	self.Up = false
	peer.Up = false
	now = t0.Add(7 * time.Second)
	p.Evaluate()
	if last := got[len(got)-1]; !last.Answer.Refuse || last.Orders != nil || !last.Answer.Unstable {
		t.Fatalf("all down: %+v", last)
	}
}

// TestPublisherWithdraw: at shutdown a pool-mode site hands out the peers
// that passed their last probe (with the short TTL), not a refusal that
// PowerDNS Recursor would remember; with no peer up it refuses.
func TestPublisherWithdraw(t *testing.T) {
	var got []Published
	self, peer := member("alpha", true, 1), member("beta", true, 0.5)
	p := NewPublisher(Policy{Mode: Pool, AllDown: Refuse, Interval: time.Hour, Window: time.Second, DryRun: true},
		func() Member { return self }, func() []Member { return []Member{peer} },
		func(pub Published) { got = append(got, pub) })
	p.Withdraw()
	if len(got) != 1 || got[0].Answer.Refuse || len(got[0].Answer.Members) != 1 || got[0].Answer.Members[0].Name != "beta" ||
		!got[0].Answer.Unstable || len(got[0].Orders) != OrdersPerAnswer {
		t.Fatalf("Withdraw in pool mode published %+v, want beta alone, unstable", got)
	}
	peer.Up = false
	p.Withdraw()
	if last := got[len(got)-1]; !last.Answer.Refuse {
		t.Errorf("Withdraw in pool mode with no peer up published %+v, want a refusal", last.Answer)
	}
	if p.Evaluate(); len(got) != 2 {
		t.Errorf("published after Withdraw: %+v", got[2:])
	}
}

// TestPublisherReload: Apply while Run runs puts the new all_down in force
// at once and republishes even when the outcome is the same (a reload may
// have changed the addresses or TTLs the publish function adds); dry-run
// serves a withdrawn site; Withdraw refuses and nothing is published after
// it.
func TestPublisherReload(t *testing.T) {
	self, peer := member("alpha", false, 1), member("beta", false, 1)
	pubs := make(chan Published, 16)
	p := NewPublisher(Policy{Mode: Pool, AllDown: Refuse, Interval: time.Hour, Window: time.Second},
		func() Member { return self }, func() []Member { return []Member{peer} },
		func(pub Published) { pubs <- pub })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	next := func(what string) Published {
		t.Helper()
		select {
		case pub := <-pubs:
			return pub
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing published within 5s", what)
			return Published{}
		}
	}
	if pub := next("start"); !pub.Answer.Refuse {
		t.Fatalf("all down with Refuse: %+v", pub.Answer)
	}
	apply := func(pol Policy) {
		t.Helper()
		plan, err := p.Prepare(pol)
		if err != nil {
			t.Fatal(err)
		}
		p.Apply(plan)
	}
	all := Policy{Mode: Pool, AllDown: All, Interval: time.Hour, Window: time.Second}
	apply(all)
	if pub := next("all_down = all"); pub.Answer.Refuse || len(pub.Answer.Members) != 2 || len(pub.Orders) != OrdersPerAnswer {
		t.Fatalf("all down with All: %+v", pub)
	}
	apply(all)
	if pub := next("same policy again"); pub.Answer.Refuse || len(pub.Answer.Members) != 2 {
		t.Fatalf("republish: %+v", pub.Answer)
	}
	if _, err := p.Prepare(Policy{Mode: Pool}); err == nil {
		t.Error("Prepare accepted a zero interval")
	}
	// Dry-run in self mode: the withdrawn site is served, alone.
	apply(Policy{Mode: Self, AllDown: Refuse, Interval: time.Hour, Window: time.Second, DryRun: true})
	if pub := next("dry-run"); pub.Answer.Refuse || len(pub.Answer.Members) != 1 || pub.Answer.Members[0].Name != "alpha" {
		t.Fatalf("dry-run: %+v", pub.Answer)
	}
	p.Withdraw()
	if pub := next("withdraw"); !pub.Answer.Refuse {
		t.Fatalf("Withdraw in self mode published %+v, want a refusal", pub.Answer)
	}
	apply(all)
	// With an interval of an hour, nothing else is published.
	select {
	case pub := <-pubs:
		t.Fatalf("unexpected publish %+v", pub.Answer)
	case <-time.After(100 * time.Millisecond):
	}
}
