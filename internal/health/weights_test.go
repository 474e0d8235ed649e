package health

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
)

// sv is one server's traffic during one poll interval, as a recorded
// sequence describes it: the requests and errors it got in the interval and
// the rtime HAProxy showed at the end of it.
type sv struct {
	rtime, reqs, errs int
	down              bool
}

// fleet turns per-interval traffic into HAProxy's cumulative counters, like
// successive `show stat` polls.
type fleet struct {
	stot, errs map[string]int64
}

func newFleet() *fleet { return &fleet{stot: map[string]int64{}, errs: map[string]int64{}} }

func (f *fleet) poll(servers map[string]sv) []haproxy.Server {
	var out []haproxy.Server
	for i := 1; i <= len(servers); i++ {
		name := fmt.Sprintf("s%d", i)
		s := servers[name]
		f.stot[name] += int64(s.reqs)
		f.errs[name] += int64(s.errs)
		out = append(out, haproxy.Server{Name: name, Status: "UP", Weight: 100, Usable: !s.down,
			Rtime: s.rtime, Stot: f.stot[name], Hrsp5xx: f.errs[name]})
	}
	// The other site's backup server never gets a weight.
	return append(out, haproxy.Server{Name: "b1", Backup: true, Usable: true, Weight: 100, Rtime: 900, Stot: 1 << 40})
}

// five returns five servers with the same traffic, then applies changes.
func five(rtime, reqs int, changes map[string]sv) map[string]sv {
	m := map[string]sv{}
	for i := 1; i <= 5; i++ {
		m[fmt.Sprintf("s%d", i)] = sv{rtime: rtime, reqs: reqs}
	}
	for k, v := range changes {
		m[k] = v
	}
	return m
}

func percents(ws map[string]ServerWeight) map[string]int {
	out := map[string]int{}
	for k, v := range ws {
		out[k] = v.Percent
	}
	return out
}

func allAt(p int, changes map[string]int) map[string]int {
	m := map[string]int{"s1": p, "s2": p, "s3": p, "s4": p, "s5": p}
	for k, v := range changes {
		m[k] = v
	}
	return m
}

// runWeights feeds polls every 500 ms of a fake clock and returns the
// weights after each.
func runWeights(p WeightPolicy, polls []map[string]sv) []map[string]int {
	w := NewWeigher(p)
	f := newFleet()
	var out []map[string]int
	for i, servers := range polls {
		out = append(out, percents(w.Update(t0.Add(time.Duration(i)*500*time.Millisecond), f.poll(servers))))
	}
	return out
}

func repeat(n int, m map[string]sv) []map[string]sv {
	out := make([]map[string]sv, n)
	for i := range out {
		out[i] = m
	}
	return out
}

func TestWeigherSequences(t *testing.T) {
	p := WeightPolicy{HalfLife: 2 * time.Second, MinWeight: 10, RecoveryRate: 10}
	slow := five(5, 50, map[string]sv{"s5": {rtime: 205, reqs: 50}})
	for _, tc := range []struct {
		name  string
		polls []map[string]sv
		want  map[string]int // after the last poll
	}{
		{"all equal", repeat(10, five(5, 50, nil)), allAt(100, nil)},
		{"first poll only reads counters", []map[string]sv{slow}, allAt(100, nil)},
		// The first sample sets the average: (5+10)/(205+10) = 7% -> floor.
		{"slow server falls to min_weight", repeat(2, slow), allAt(100, map[string]int{"s5": 10})},
		// (5+10)/(25+10) = 43%.
		{"moderately slow server", repeat(3, five(5, 50, map[string]sv{"s5": {rtime: 25, reqs: 50}})), allAt(100, map[string]int{"s5": 43})},
		{"servers within the slack keep full weight", repeat(3, five(5, 50, map[string]sv{"s5": {rtime: 6, reqs: 50}})), allAt(100, map[string]int{"s5": 94})},
		// 20% errors over a median of 0: 1 - 5 x 0.2 = 0 -> floor.
		{"erroring server", repeat(3, five(5, 50, map[string]sv{"s3": {rtime: 5, reqs: 50, errs: 10}})), allAt(100, map[string]int{"s3": 10})},
		// 6% errors: 1 - 5 x 0.06 = 70%.
		{"some errors", repeat(3, five(5, 50, map[string]sv{"s3": {rtime: 5, reqs: 50, errs: 3}})), allAt(100, map[string]int{"s3": 70})},
		{"no traffic keeps the weight", append(repeat(2, slow),
			repeat(20, five(5, 50, map[string]sv{"s5": {rtime: 5, reqs: 0}}))...), allAt(100, map[string]int{"s5": 10})},
		{"a down server leaves the median", repeat(3, five(5, 50, map[string]sv{
			"s1": {rtime: 500, reqs: 50, down: true}, "s2": {rtime: 400, reqs: 50, down: true}, "s3": {rtime: 300, reqs: 50, down: true}})),
			allAt(100, nil)},
		{"everyone slow is the median", repeat(3, five(300, 50, nil)), allAt(100, nil)},
		// Two slow servers of five: the cap (20%: one server) keeps only
		// the slower one low, so the pool never shrinks by more than one.
		{"max_lowered keeps the pool", repeat(3, five(5, 50, map[string]sv{"s4": {rtime: 105, reqs: 50}, "s5": {rtime: 205, reqs: 50}})),
			allAt(100, map[string]int{"s5": 10})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runWeights(p, tc.polls)
			if diff := cmp.Diff(tc.want, got[len(got)-1]); diff != "" {
				t.Errorf("weights after %d polls (-want +got):\n%s", len(tc.polls), diff)
			}
		})
	}
}

// TestWeigherRecovery: a slow server becomes fast again. Its weight rises
// by at most RecoveryRate x 0.5 s = 5 points per poll, never falls while it
// is fast, and is back at 100% once the smoothed latency has caught up.
func TestWeigherRecovery(t *testing.T) {
	p := WeightPolicy{HalfLife: time.Second, MinWeight: 10, RecoveryRate: 10}
	polls := append(repeat(4, five(5, 50, map[string]sv{"s5": {rtime: 205, reqs: 50}})), repeat(40, five(5, 50, nil))...)
	got := runWeights(p, polls)
	if got[3]["s5"] != 10 {
		t.Fatalf("slow s5 at %d%%, want 10%%", got[3]["s5"])
	}
	for i := 4; i < len(got); i++ {
		prev, cur := got[i-1]["s5"], got[i]["s5"]
		if cur < prev || cur-prev > 5 {
			t.Errorf("poll %d: s5 %d%% -> %d%%, want a rise of 0 to 5 points", i, prev, cur)
		}
	}
	if w := got[len(got)-1]["s5"]; w != 100 {
		t.Errorf("s5 after recovery: %d%%, want 100%%", w)
	}
}

// TestWeigherCounterReset: HAProxy restarted, its counters start from 0: the
// poll is a new first reading, not a burst of negative traffic.
func TestWeigherCounterReset(t *testing.T) {
	w := NewWeigher(WeightPolicy{})
	f := newFleet()
	w.Update(t0, f.poll(five(5, 50, nil)))
	w.Update(t0.Add(time.Second), f.poll(five(5, 50, nil)))
	reset := newFleet()
	got := percents(w.Update(t0.Add(2*time.Second), reset.poll(five(5, 1, map[string]sv{"s2": {rtime: 500, reqs: 1, errs: 1}}))))
	if d := cmp.Diff(allAt(100, nil), got); d != "" {
		t.Errorf("after a counter reset (-want +got):\n%s", d)
	}
}

// TestWeigherForgets: a server removed from HAProxy is forgotten, and
// starts again at 100% if it comes back.
func TestWeigherForgets(t *testing.T) {
	w := NewWeigher(WeightPolicy{MinWeight: 20})
	f := newFleet()
	slow := five(5, 50, map[string]sv{"s5": {rtime: 500, reqs: 50}})
	w.Update(t0, f.poll(slow))
	if got := w.Update(t0.Add(time.Second), f.poll(slow))["s5"].Percent; got != 20 {
		t.Fatalf("s5 at %d%%, want 20%%", got)
	}
	four := f.poll(slow)[:4]
	if got := w.Update(t0.Add(2*time.Second), four); len(got) != 4 {
		t.Errorf("weights %v, want 4 servers", got)
	}
	if got := w.Update(t0.Add(3*time.Second), f.poll(slow))["s5"]; got.Percent != 100 || got.Sampled {
		t.Errorf("s5 back: %+v, want a fresh 100%%", got)
	}
}

func TestStaticAlgorithm(t *testing.T) {
	for algo, want := range map[string]bool{"static-rr": true, "first": true, "roundrobin": false, "leastconn": false, "random": false, "": false} {
		if got := StaticAlgorithm(algo); got != want {
			t.Errorf("StaticAlgorithm(%q) = %v, want %v", algo, got, want)
		}
	}
}

// TestWeigherMaxLowered: at the defaults (min_weight 1%, max_lowered 20%)
// one slow server of five is cut to 1%, a second slow one is held at 100%
// while the first is low, and a larger cap lowers both.
func TestWeigherMaxLowered(t *testing.T) {
	// (5+10)/(3005+10) and (5+10)/(2005+10): both under 1%, so at the floor.
	two := repeat(3, five(5, 50, map[string]sv{"s2": {rtime: 3005, reqs: 50}, "s5": {rtime: 2005, reqs: 50}}))
	for _, c := range []struct {
		p    WeightPolicy
		want map[string]int
	}{
		{WeightPolicy{}, allAt(100, map[string]int{"s2": 1})},
		{WeightPolicy{MaxLowered: 40}, allAt(100, map[string]int{"s2": 1, "s5": 1})},
		{WeightPolicy{MaxLowered: 1}, allAt(100, map[string]int{"s2": 1})}, // at least one
	} {
		got := runWeights(c.p, two)
		if d := cmp.Diff(c.want, got[len(got)-1]); d != "" {
			t.Errorf("max_lowered %d%% (-want +got):\n%s", c.p.MaxLowered, d)
		}
	}
	// A lowered server without traffic keeps its weight and counts against
	// the cap: the other slow one stays at 100%.
	polls := append(repeat(3, five(5, 50, map[string]sv{"s5": {rtime: 2005, reqs: 50}})),
		repeat(3, five(5, 50, map[string]sv{"s5": {rtime: 2005, reqs: 0}, "s3": {rtime: 4005, reqs: 50}}))...)
	got := runWeights(WeightPolicy{}, polls)
	if d := cmp.Diff(allAt(100, map[string]int{"s5": 1}), got[len(got)-1]); d != "" {
		t.Errorf("a quiet lowered server against the cap (-want +got):\n%s", d)
	}
}

// TestWeigherOutlier: at the defaults a server ten times slower than the
// median (beyond the slack) is an outlier and gets min_weight (1%) rather
// than its proportional 5%, which would keep it in a small backend's p99; a
// server twice as slow keeps its proportional weight.
func TestWeigherOutlier(t *testing.T) {
	got := runWeights(WeightPolicy{}, repeat(3, five(1, 50, map[string]sv{"s5": {rtime: 201, reqs: 50}})))
	if d := cmp.Diff(allAt(100, map[string]int{"s5": 1}), got[len(got)-1]); d != "" {
		t.Errorf("a 200 ms server beside 1 ms ones (-want +got):\n%s", d)
	}
	got = runWeights(WeightPolicy{}, repeat(3, five(1, 50, map[string]sv{"s5": {rtime: 12, reqs: 50}})))
	if d := cmp.Diff(allAt(100, map[string]int{"s5": 50}), got[len(got)-1]); d != "" {
		t.Errorf("a 12 ms server beside 1 ms ones: (1+10)/(12+10) = 50%% (-want +got):\n%s", d)
	}
}
