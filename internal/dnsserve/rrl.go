package dnsserve

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// RRL configures response rate limiting for UDP (like NSD's and Knot's
// "rrl"; see also the ISC technical note "Response Rate Limiting in the
// Domain Name System"). Each client prefix (/24 for IPv4, /56 for IPv6) has
// a token bucket holding up to one second of responses. A response over
// the rate is slipped (sent truncated, with TC set and no records, so a real
// resolver retries over TCP, RFC 7766 section 5) or dropped. TCP responses,
// clients in Whitelist and queries with a valid server cookie (RFC 7873
// section 5.2.4) are never limited.
type RRL struct {
	// Rate is the number of responses per second each prefix may receive.
	// 0 means the default, 200; a negative value turns rate limiting off.
	Rate int
	// Slip is how often a limited response is sent truncated instead of
	// being dropped: every Slip-th one, so 1 truncates them all. 0 means
	// the default, 2; a negative value drops every limited response.
	Slip int
	// Whitelist are client prefixes never limited. Default none.
	Whitelist []netip.Prefix
	// Loopback limits loopback clients (127.0.0.0/8, ::1) too. By default
	// they are exempt: the kernel drops loopback sources arriving from the
	// network, so they cannot be spoofed for reflection, and limiting them
	// would only throttle a resolver or monitor on the same host.
	Loopback bool
}

// RRL defaults.
const (
	defaultRRLRate = 200 // responses per second per prefix
	defaultRRLSlip = 2
	// rrlBuckets is the size of the bucket table. Prefixes that hash to
	// the same bucket share it until one replaces the other; the hash seed
	// is random, so a client cannot aim at another's bucket.
	rrlBuckets = 1 << 16
	rrlStripes = 256 // locks over the buckets
)

// RRLStats are the counters of response rate limiting since New. Each
// field counts UDP responses; they only grow.
type RRLStats struct {
	// Limited responses went over their prefix's rate: Slipped + Dropped.
	Limited uint64
	// Slipped responses were sent truncated instead of in full.
	Slipped uint64
	// Dropped responses were not sent at all.
	Dropped uint64
	// CookieExempt responses skipped the limit because the query carried
	// a valid server cookie (RFC 7873 section 5.2.4).
	CookieExempt uint64
}

// add returns the sum of s and o, field by field.
func (s RRLStats) add(o RRLStats) RRLStats {
	return RRLStats{Limited: s.Limited + o.Limited, Slipped: s.Slipped + o.Slipped,
		Dropped: s.Dropped + o.Dropped, CookieExempt: s.CookieExempt + o.CookieExempt}
}

// rrlVerdict is what the limiter decides about one response.
type rrlVerdict uint8

const (
	rrlPass rrlVerdict = iota
	rrlSlip
	rrlDrop
)

// limiter is the token-bucket table. It is safe for concurrent use and
// never allocates after newLimiter.
type limiter struct {
	cost      int64 // credit one response costs, in nanoseconds
	slip      int64 // 0: never slip
	whitelist []netip.Prefix
	loopback  bool // limit loopback clients too
	seed      uint64
	epoch     time.Time // bucket times are nanoseconds since epoch

	locks   [rrlStripes]sync.Mutex
	buckets []rrlBucket // guarded by locks[i%rrlStripes]

	limited, slipped, dropped, cookieExempt atomic.Uint64
}

// rrlBucket is one prefix's bucket.
type rrlBucket struct {
	key     uint64 // prefix key; 0 for an unused bucket
	credit  int64  // credit in nanoseconds: refills one per nanosecond, at most one second
	last    int64  // time of the last refill, nanoseconds since epoch
	limited int64  // limited responses, for slip
}

// newLimiter returns the limiter for cfg, or nil if rate limiting is off.
// Defaults have been applied to cfg.
func newLimiter(cfg RRL, epoch time.Time) *limiter {
	if cfg.Rate < 0 {
		return nil
	}
	l := &limiter{
		cost:      int64(time.Second) / int64(cfg.Rate),
		whitelist: cfg.Whitelist,
		loopback:  cfg.Loopback,
		seed:      rand.Uint64() | 1,
		epoch:     epoch,
		buckets:   make([]rrlBucket, rrlBuckets),
	}
	if cfg.Slip > 0 {
		l.slip = int64(cfg.Slip)
	}
	return l
}

// prefixKey returns the /24 or /56 of ip as a non-zero key.
func prefixKey(ip netip.Addr) uint64 {
	if ip.Is4() {
		a := ip.As4()
		return uint64(a[0])<<32 | uint64(a[1])<<24 | uint64(a[2])<<16 | 4
	}
	a := ip.As16()
	var k uint64
	for _, b := range a[:7] {
		k = k<<8 | uint64(b)
	}
	return k<<8 | 6
}

// check charges one response to ip's prefix at now and returns the verdict.
func (l *limiter) check(ip netip.Addr, now time.Time) rrlVerdict {
	if !l.loopback && ip.IsLoopback() {
		return rrlPass
	}
	for _, p := range l.whitelist {
		if p.Contains(ip) {
			return rrlPass
		}
	}
	key := prefixKey(ip)
	h := (key ^ l.seed) * 0x9E3779B97F4A7C15
	i := h >> (64 - 16) // rrlBuckets == 1<<16
	t := int64(now.Sub(l.epoch))

	mu := &l.locks[i%rrlStripes]
	mu.Lock()
	b := &l.buckets[i]
	if b.key != key {
		*b = rrlBucket{key: key, credit: int64(time.Second), last: t}
	}
	if d := t - b.last; d > 0 {
		b.credit = min(b.credit+d, int64(time.Second))
		b.last = t
	}
	v := rrlPass
	if b.credit >= l.cost {
		b.credit -= l.cost
	} else {
		b.limited++
		v = rrlDrop
		if l.slip > 0 && b.limited%l.slip == 0 {
			v = rrlSlip
		}
	}
	mu.Unlock()

	switch v {
	case rrlSlip:
		l.limited.Add(1)
		l.slipped.Add(1)
	case rrlDrop:
		l.limited.Add(1)
		l.dropped.Add(1)
	}
	return v
}

// stats returns a snapshot of the counters.
func (l *limiter) stats() RRLStats {
	return RRLStats{
		Limited:      l.limited.Load(),
		Slipped:      l.slipped.Load(),
		Dropped:      l.dropped.Load(),
		CookieExempt: l.cookieExempt.Load(),
	}
}
