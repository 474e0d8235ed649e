package health

// RiseFall is the rise/fall hysteresis shared by the site health policy
// (Tracker: rise and fall counted in polls) and the peer probes (counted in
// probes), as HAProxy's own checks count them (configuration manual §5.2
// "rise" and "fall"): it turns up after Rise consecutive good observations
// while down, and down after Fall consecutive bad ones while up. It starts
// down. The zero value with Rise and Fall set is ready to use; it is not
// safe for concurrent use.
type RiseFall struct {
	// Rise is the number of consecutive good observations that turn it up
	// (>= 1); Fall the number of consecutive bad ones that turn it down
	// (>= 1). They may change between observations (a reload); the counts
	// under way are judged by the new values from the next observation.
	Rise, Fall int

	up              bool
	rising, falling int
}

// Observe feeds one observation (good: healthy) and reports whether Up
// changed.
func (r *RiseFall) Observe(good bool) bool {
	switch {
	case r.up && good:
		r.falling = 0
	case r.up:
		r.falling++
		if r.falling >= r.Fall {
			r.Set(false)
			return true
		}
	case good:
		r.rising++
		if r.rising >= r.Rise {
			r.Set(true)
			return true
		}
	default:
		r.rising = 0
	}
	return false
}

// Interrupt breaks a run of good observations without counting a bad one:
// the rise count starts again (a failed poll proves nothing about the
// servers, so it must not count towards fall either).
func (r *RiseFall) Interrupt() { r.rising = 0 }

// Set forces the state (a stale site is withdrawn at once) and clears both
// counts.
func (r *RiseFall) Set(up bool) { r.up, r.rising, r.falling = up, 0, 0 }

// Up reports the state.
func (r *RiseFall) Up() bool { return r.up }

// Rising is the count of consecutive good observations while down, towards
// Rise; Falling the count of bad ones while up, towards Fall.
func (r *RiseFall) Rising() int { return r.rising }

// Falling: see Rising.
func (r *RiseFall) Falling() int { return r.falling }

// Settled reports whether no rise or fall count is under way.
func (r *RiseFall) Settled() bool { return r.rising == 0 && r.falling == 0 }

// Capacity is a site's spare capacity from 0 to 1: the share of its
// non-backup servers that are usable (0 when it has none). It is the one
// definition used by the pool policy for this site, by the status document
// peers read, and by the peer probe for status documents older than
// version 1.
func Capacity(usable, total int) float64 {
	if total <= 0 {
		return 0
	}
	return min(1, max(0, float64(usable)/float64(total)))
}
