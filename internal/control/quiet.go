package control

import "time"

// quietWatch decides when a frontend has been quiet long enough for a
// drain -wait to return. It is pure: every call passes the time.
type quietWatch struct {
	// period is how long the frontend must stay quiet (control.quiet_period).
	period time.Duration
	// since is the first of the current run of quiet observations; zero
	// while the frontend has traffic or was not read.
	since time.Time
}

// observe feeds one reading of the frontend at now: quiet is true when it
// showed no new session and no request in the last second, false when it
// showed traffic or could not be read (an unread frontend proves nothing).
// It returns true once quiet readings have covered period without a break.
func (q *quietWatch) observe(now time.Time, quiet bool) bool {
	if !quiet {
		q.since = time.Time{}
		return false
	}
	if q.since.IsZero() {
		q.since = now
	}
	return now.Sub(q.since) >= q.period
}
