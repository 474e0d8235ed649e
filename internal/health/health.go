// Package health owns the site health policy: it turns a sequence of polls of
// HAProxy's service backend into one decision, serving or withdrawn, with the
// reason. It is pure: no sockets, no goroutines, no clock of its own (every
// call passes the time), so tests drive it with a fake clock. It does not
// poll, publish or answer; the site poller owns a Tracker and publishes the
// State it returns.
package health

import (
	"fmt"
	"time"
)

// Quorum is the number of usable servers a site needs to serve: an absolute
// Count, or a Percent of the backend's non-backup servers. Exactly one is
// non-zero.
type Quorum struct {
	// Count is the absolute number of usable servers needed, or 0.
	Count int
	// Percent is the percentage (1 to 100) of non-backup servers needed,
	// rounded up, or 0.
	Percent int
}

// Required returns how many usable servers out of total are needed: Count, or
// Percent of total rounded up and at least 1.
func (q Quorum) Required(total int) int {
	if q.Percent == 0 {
		return q.Count
	}
	n := (total*q.Percent + 99) / 100
	return max(n, 1)
}

// Policy holds the knobs of the decision (configuration keys health.min_up,
// health.rise, health.fall and haproxy.stale_after).
type Policy struct {
	// MinUp is the quorum of usable servers.
	MinUp Quorum
	// Rise is the number of consecutive good polls needed to serve (>= 1).
	Rise int
	// Fall is the number of consecutive polls below quorum needed to
	// withdraw (>= 1).
	Fall int
	// StaleAfter withdraws the site at once when the last successful poll is
	// older than this.
	StaleAfter time.Duration
}

// Observation is the outcome of one poll.
type Observation struct {
	// At is when the poll finished.
	At time.Time
	// Usable and Total count the backend's non-backup servers that would get
	// new traffic, and all of them. Ignored when Err is set.
	Usable, Total int
	// Err is why the poll failed (socket missing, timeout, bad reply); nil
	// for a successful poll.
	Err error
}

// State is the decision after the latest observation. It is a value: the
// Tracker hands out copies.
type State struct {
	// Serving is true when the site answers for the zone.
	Serving bool
	// Usable, Total and Required are the counts of the last successful poll
	// and the quorum they were judged against.
	Usable, Total, Required int
	// Reason says, in a few words, why the site is in this state.
	Reason string
	// Since is when Serving last changed (or when the Tracker started).
	Since time.Time
	// LastGood is when the last successful poll finished; zero before any.
	LastGood time.Time
	// LastError is the error of the latest poll, or "" if it succeeded.
	LastError string
	// Rising counts consecutive good polls while withdrawn (towards Rise);
	// Falling counts consecutive polls below quorum while serving (towards
	// Fall). Both are 0 when the state is settled.
	Rising, Falling int
}

// Settled reports whether the state is not between states (no rise or fall
// count under way).
func (s State) Settled() bool { return s.Rising == 0 && s.Falling == 0 }

// Tracker applies a Policy to successive observations. It is not safe for
// concurrent use: one poller owns it.
type Tracker struct {
	policy Policy
	rf     RiseFall
	state  State
}

// NewTracker returns a Tracker that starts withdrawn at now: a site serves
// only once Rise good polls have proven it can.
func NewTracker(p Policy, now time.Time) *Tracker {
	return &Tracker{policy: p, rf: RiseFall{Rise: p.Rise, Fall: p.Fall},
		state: State{Reason: "starting: waiting for good polls", Since: now}}
}

// State returns the current decision.
func (t *Tracker) State() State { return t.state }

// SetPolicy changes the policy (on a configuration reload); the current
// state and counters are kept and judged by the new policy from the next
// observation on.
func (t *Tracker) SetPolicy(p Policy) {
	t.policy = p
	t.rf.Rise, t.rf.Fall = p.Rise, p.Fall
}

// Observe feeds one poll's outcome and returns the new state and whether
// Serving changed.
//
// A successful poll with Usable >= Required is good; one below is bad. A
// failed poll is neither: it interrupts the rise count but does not count
// towards fall, because a failing runtime API says nothing about the
// servers: instead the site is withdrawn once the last successful poll is
// older than Policy.StaleAfter. Every poll ends within its own deadline and
// is observed, so staleness is noticed within one poll interval. The
// reason always describes the latest observation.
func (t *Tracker) Observe(o Observation) (State, bool) {
	s := &t.state
	was := s.Serving
	if o.Err != nil {
		s.LastError = o.Err.Error()
		t.rf.Interrupt()
		t.checkStale(o.At)
		t.sync()
		return t.state, s.Serving != was
	}
	s.LastError = ""
	s.LastGood = o.At
	s.Usable, s.Total = o.Usable, o.Total
	s.Required = t.policy.MinUp.Required(o.Total)
	good := o.Usable >= s.Required
	rising, falling := t.rf.Rising(), t.rf.Falling()
	if t.rf.Observe(good) {
		s.Serving, s.Since = t.rf.Up(), o.At
	}
	counts := fmt.Sprintf("%d of %d servers usable, %d needed", o.Usable, o.Total, s.Required)
	switch {
	case s.Serving != was && s.Serving:
		s.Reason = fmt.Sprintf("quorum met: %s, for %d polls", counts, rising+1)
	case s.Serving != was:
		s.Reason = fmt.Sprintf("below quorum: %s, for %d polls", counts, falling+1)
	case good && s.Serving:
		s.Reason = "quorum met: " + counts
	case good:
		s.Reason = fmt.Sprintf("quorum met: %s; serving after %d more good polls", counts, t.policy.Rise-t.rf.Rising())
	case s.Serving:
		s.Reason = fmt.Sprintf("below quorum: %s; withdrawing after %d more polls", counts, t.policy.Fall-t.rf.Falling())
	default:
		s.Reason = "below quorum: " + counts
	}
	t.sync()
	return t.state, s.Serving != was
}

// sync copies the rise and fall counts into the state.
func (t *Tracker) sync() { t.state.Rising, t.state.Falling = t.rf.Rising(), t.rf.Falling() }

func (t *Tracker) checkStale(now time.Time) {
	s := &t.state
	if !s.Serving {
		if s.LastError != "" {
			s.Reason = "runtime API: " + s.LastError
		}
		return
	}
	age := now.Sub(s.LastGood)
	if age <= t.policy.StaleAfter {
		return
	}
	reason := fmt.Sprintf("stale: no successful poll for %s", age.Round(time.Millisecond))
	if s.LastError != "" {
		reason += ": " + s.LastError
	}
	t.rf.Set(false)
	s.Serving, s.Since, s.Reason = false, now, reason
}
