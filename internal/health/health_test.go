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
