package dnssec

import (
	"time"

	"github.com/miekg/dns"
)

// sigTime returns the time of the RRSIG time field v (seconds since the
// epoch modulo 2^32) read with RFC 1982 serial number arithmetic as the
// instant within 2^31 seconds of now (RFC 4034 section 3.1.5).
func sigTime(v uint32, now time.Time) time.Time {
	n := now.Unix()
	return time.Unix(n+int64(int32(v-uint32(n))), 0)
}

// Window returns the interval in which every signature of sigs is in its
// validity period: the latest inception and the earliest expiration, each
// read as the instant within 2^31 seconds of now (RFC 4034 section 3.1.5).
// ok is false when sigs is empty. The interval is empty (inception after
// expiration) when no instant suits every signature.
func Window(sigs []*dns.RRSIG, now time.Time) (inception, expiration time.Time, ok bool) {
	for i, sig := range sigs {
		inc, exp := sigTime(sig.Inception, now), sigTime(sig.Expiration, now)
		if i == 0 || inc.After(inception) {
			inception = inc
		}
		if i == 0 || exp.Before(expiration) {
			expiration = exp
		}
	}
	return inception, expiration, len(sigs) > 0
}

// Valid reports whether sigs is not empty and every signature in it is in
// its validity period at now: inception <= now <= expiration (RFC 4035
// section 5.3.1). An expired or not yet valid signature makes the whole set
// invalid: it must not be served.
func Valid(sigs []*dns.RRSIG, now time.Time) bool {
	inc, exp, ok := Window(sigs, now)
	now = now.Truncate(time.Second)
	return ok && !now.Before(inc) && !now.After(exp)
}

// NeedsRefresh reports whether sigs must be made anew at now: when it is
// not Valid, or when less than refresh is left before its earliest
// expiration. The caller re-signs then; the next check is due at
// RefreshAt.
func NeedsRefresh(sigs []*dns.RRSIG, now time.Time, refresh time.Duration) bool {
	if !Valid(sigs, now) {
		return true
	}
	_, exp, _ := Window(sigs, now)
	return exp.Sub(now) < refresh
}

// RefreshAt returns when sigs starts to need a refresh: refresh before its
// earliest expiration. ok is false for an empty set, which needs one now.
func RefreshAt(sigs []*dns.RRSIG, now time.Time, refresh time.Duration) (at time.Time, ok bool) {
	_, exp, ok := Window(sigs, now)
	if !ok {
		return time.Time{}, false
	}
	return exp.Add(-refresh), true
}
