package health

import (
	"context"
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func TestQuorumRequired(t *testing.T) {
	for _, tc := range []struct {
		q     Quorum
		total int
		want  int
	}{
		{Quorum{Count: 3}, 5, 3},
		{Quorum{Count: 3}, 0, 3},
		{Quorum{Percent: 60}, 5, 3},
		{Quorum{Percent: 50}, 5, 3}, // 2.5 rounds up
		{Quorum{Percent: 100}, 5, 5},
		{Quorum{Percent: 1}, 5, 1},
		{Quorum{Percent: 60}, 0, 1}, // never zero: an empty backend cannot serve
	} {
		if got := tc.q.Required(tc.total); got != tc.want {
			t.Errorf("%+v.Required(%d) = %d, want %d", tc.q, tc.total, got, tc.want)
		}
	}
}

// step is one event fed to the tracker at t0 + at.
type step struct {
	at      time.Duration
	usable  int   // with total 5
	err     error // a failed poll
	serving bool  // expected state after the event
	changed bool  // expected change flag
}

func run(t *testing.T, p Policy, steps []step) {
	t.Helper()
	tr := NewTracker(p, t0)
	if tr.State().Serving {
		t.Fatal("a new tracker serves; it must start withdrawn")
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		var st State
		var changed bool
		st, changed = tr.Observe(Observation{At: now, Usable: s.usable, Total: 5, Err: s.err})
		if st.Serving != s.serving || changed != s.changed {
			t.Fatalf("step %d (%+v): serving=%v changed=%v, want serving=%v changed=%v (reason %q)",
				i, s, st.Serving, changed, s.serving, s.changed, st.Reason)
		}
	}
}

var errPoll = errors.New("dial unix /run/haproxy/admin.sock: connect: no such file or directory")

func TestTracker(t *testing.T) {
	p := Policy{MinUp: Quorum{Count: 3}, Rise: 2, Fall: 2, StaleAfter: 2 * time.Second}
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"start-up needs rise good polls", []step{
			{at: 0, usable: 5},
			{at: 500 * ms, usable: 5, serving: true, changed: true},
			{at: 1000 * ms, usable: 5, serving: true},
		}},
		{"start-up with a bad poll in between restarts the count", []step{
			{at: 0, usable: 5},
			{at: 500 * ms, usable: 2},
			{at: 1000 * ms, usable: 5},
			{at: 1500 * ms, usable: 5, serving: true, changed: true},
		}},
		{"start-up with an error in between restarts the count", []step{
			{at: 0, usable: 5},
			{at: 500 * ms, err: errPoll},
			{at: 1000 * ms, usable: 5},
			{at: 1500 * ms, usable: 5, serving: true, changed: true},
		}},
		{"exactly min_up is enough", []step{
			{at: 0, usable: 3},
			{at: 500 * ms, usable: 3, serving: true, changed: true},
		}},
		{"fall needs fall bad polls", []step{
			{at: 0, usable: 5},
			{at: 500 * ms, usable: 5, serving: true, changed: true},
			{at: 1000 * ms, usable: 2, serving: true},
			{at: 1500 * ms, usable: 2, changed: true},
			{at: 2000 * ms, usable: 2},
		}},
		{"a single dip does not withdraw", []step{
			{at: 0, usable: 5},
			{at: 500 * ms, usable: 5, serving: true, changed: true},
			{at: 1000 * ms, usable: 2, serving: true},
			{at: 1500 * ms, usable: 4, serving: true},
			{at: 2000 * ms, usable: 2, serving: true},
			{at: 2500 * ms, usable: 4, serving: true},
		}},
		{"errors do not count towards fall", []step{
			{at: 0, usable: 5},
			{at: 500 * ms, usable: 5, serving: true, changed: true},
			{at: 1000 * ms, err: errPoll, serving: true},
			{at: 1500 * ms, err: errPoll, serving: true},
			{at: 2000 * ms, err: errPoll, serving: true},
			{at: 2500 * ms, err: errPoll, serving: true}, // 2.0s since last good: not yet stale
			{at: 2501 * ms, err: errPoll, changed: true}, // just past stale_after
			{at: 3000 * ms, err: errPoll},
		}},
		{"a poll that hung until its deadline counts as failed", []step{
			{at: 0, usable: 5},
			{at: 500 * ms, usable: 5, serving: true, changed: true},
			{at: 2400 * ms, err: context.DeadlineExceeded, serving: true},
			{at: 2600 * ms, err: context.DeadlineExceeded, changed: true},
		}},
		{"recovery after staleness needs rise again", []step{
			{at: 0, usable: 5},
			{at: 500 * ms, usable: 5, serving: true, changed: true},
			{at: 3000 * ms, err: errPoll, changed: true},
			{at: 3500 * ms, usable: 5},
			{at: 4000 * ms, usable: 5, serving: true, changed: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { run(t, p, tc.steps) })
	}
}

func TestTrackerRiseFallOne(t *testing.T) {
	p := Policy{MinUp: Quorum{Percent: 60}, Rise: 1, Fall: 1, StaleAfter: time.Second}
	run(t, p, []step{
		{at: 0, usable: 3, serving: true, changed: true},
		{at: 100 * time.Millisecond, usable: 2, changed: true},
		{at: 200 * time.Millisecond, usable: 3, serving: true, changed: true},
	})
}

func TestTrackerReasons(t *testing.T) {
	p := Policy{MinUp: Quorum{Count: 3}, Rise: 1, Fall: 1, StaleAfter: time.Second}
	tr := NewTracker(p, t0)
	st, _ := tr.Observe(Observation{At: t0, Usable: 4, Total: 5})
	if want := "quorum met: 4 of 5 servers usable, 3 needed, for 1 polls"; st.Reason != want {
		t.Errorf("reason %q, want %q", st.Reason, want)
	}
	if st.Since != t0 || st.LastGood != t0 || st.Required != 3 {
		t.Errorf("state %+v: want Since and LastGood %v, Required 3", st, t0)
	}
	st, _ = tr.Observe(Observation{At: t0.Add(time.Second), Err: errPoll})
	if st.LastError != errPoll.Error() || !st.Serving {
		t.Errorf("after one error: %+v", st)
	}
	st, _ = tr.Observe(Observation{At: t0.Add(1500 * time.Millisecond), Err: errPoll})
	if want := "stale: no successful poll for 1.5s: " + errPoll.Error(); st.Reason != want || st.Serving {
		t.Errorf("reason %q serving %v, want %q withdrawn", st.Reason, st.Serving, want)
	}
	st, _ = tr.Observe(Observation{At: t0.Add(2 * time.Second), Err: errPoll})
	if want := "runtime API: " + errPoll.Error(); st.Reason != want {
		t.Errorf("reason %q, want %q", st.Reason, want)
	}
}

// TestTrackerReasonFollowsPolls: the reason always describes the latest
// poll, not the one that switched the state ("5 of 5 usable" while 4 are
// was a finding of the attack run, issue 15 item 9).
func TestTrackerReasonFollowsPolls(t *testing.T) {
	p := Policy{MinUp: Quorum{Count: 3}, Rise: 2, Fall: 2, StaleAfter: time.Minute}
	tr := NewTracker(p, t0)
	for i, c := range []struct {
		usable int
		want   string
	}{
		{5, "quorum met: 5 of 5 servers usable, 3 needed; serving after 1 more good polls"},
		{5, "quorum met: 5 of 5 servers usable, 3 needed, for 2 polls"},
		{4, "quorum met: 4 of 5 servers usable, 3 needed"},
		{2, "below quorum: 2 of 5 servers usable, 3 needed; withdrawing after 1 more polls"},
		{1, "below quorum: 1 of 5 servers usable, 3 needed, for 2 polls"},
		{2, "below quorum: 2 of 5 servers usable, 3 needed"},
	} {
		st, _ := tr.Observe(Observation{At: t0.Add(time.Duration(i) * time.Second), Usable: c.usable, Total: 5})
		if st.Reason != c.want {
			t.Errorf("poll %d (%d usable): reason %q, want %q", i, c.usable, st.Reason, c.want)
		}
	}
}

// TestRiseFall: the shared hysteresis turns up after Rise good
// observations, down after Fall bad ones, and an interruption restarts the
// rise count without counting towards fall.
func TestRiseFall(t *testing.T) {
	rf := RiseFall{Rise: 2, Fall: 3}
	steps := []struct {
		op      string // "good", "bad", "interrupt"
		up      bool
		changed bool
		settled bool
	}{
		{"good", false, false, false},
		{"interrupt", false, false, true},
		{"good", false, false, false},
		{"good", true, true, true},
		{"bad", true, false, false},
		{"bad", true, false, false},
		{"good", true, false, true},
		{"bad", true, false, false},
		{"bad", true, false, false},
		{"bad", false, true, true},
		{"bad", false, false, true},
	}
	for i, s := range steps {
		changed := false
		switch s.op {
		case "good":
			changed = rf.Observe(true)
		case "bad":
			changed = rf.Observe(false)
		case "interrupt":
			rf.Interrupt()
		}
		if rf.Up() != s.up || changed != s.changed || rf.Settled() != s.settled {
			t.Errorf("step %d %s: up %v changed %v settled %v, want %v %v %v", i, s.op, rf.Up(), changed, rf.Settled(), s.up, s.changed, s.settled)
		}
	}
}

func TestCapacity(t *testing.T) {
	for _, c := range []struct {
		usable, total int
		want          float64
	}{{0, 0, 0}, {3, 5, 0.6}, {5, 5, 1}, {7, 5, 1}, {-1, 5, 0}} {
		if got := Capacity(c.usable, c.total); got != c.want {
			t.Errorf("Capacity(%d, %d) = %v, want %v", c.usable, c.total, got, c.want)
		}
	}
}
