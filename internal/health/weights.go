package health

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
)

// WeightPolicy holds the knobs of adaptive weights (configuration keys
// agent.half_life, agent.min_weight, agent.recovery_rate,
// agent.latency_slack and agent.max_lowered; ErrorPenalty has no key).
// Zero fields take the defaults listed.
type WeightPolicy struct {
	// HalfLife is the half-life of the exponentially weighted moving
	// averages of each server's response time and error ratio: a sample's
	// influence halves every HalfLife. Default 5s.
	HalfLife time.Duration
	// MinWeight is the lowest weight advertised, in percent of the
	// configured weight, 1 to 100. Never 0: a weight of 0 makes HAProxy
	// count the server as unusable, and the site's own quorum would drop.
	// Default 1: with four other servers at 100%, a server at 1% gets 0.25%
	// of the requests, out of the 99th percentile.
	MinWeight int
	// RecoveryRate bounds how fast a weight may rise, in percentage points
	// per second of polling (a cut applies at once). Default 10: from 10%
	// back to 100% in 9 s of good polls with traffic.
	RecoveryRate float64
	// Slack is added to both the server's and the median response time
	// before comparing them, so that servers a few milliseconds apart keep
	// full weight. Default 10ms.
	Slack time.Duration
	// MaxLowered caps how many non-backup servers may be advertised below
	// 100% at once, in percent of them (rounded down, at least one), as
	// Envoy's outlier detection caps ejections (max_ejection_percent): the
	// servers with the lowest targets keep theirs, the others are held at
	// 100%. So a slowdown of many servers never shrinks the pool, while one
	// bad server is cut to MinWeight. Default 20: one server of five.
	MaxLowered int
	// ErrorPenalty is how hard errors above the median cut a weight: the
	// weight is multiplied by 1 - ErrorPenalty x (errors - median errors),
	// with errors as a fraction of requests. Default 5: 10 points more
	// errors than the median halve the weight, 20 points take it to
	// MinWeight.
	ErrorPenalty float64
}

// withDefaults returns p with every zero field set to its default.
func (p WeightPolicy) withDefaults() WeightPolicy {
	if p.HalfLife <= 0 {
		p.HalfLife = 5 * time.Second
	}
	if p.MinWeight <= 0 {
		p.MinWeight = 1
	}
	p.MinWeight = min(p.MinWeight, 100)
	if p.RecoveryRate <= 0 {
		p.RecoveryRate = 10
	}
	if p.Slack <= 0 {
		p.Slack = 10 * time.Millisecond
	}
	if p.MaxLowered <= 0 {
		p.MaxLowered = 20
	}
	p.MaxLowered = min(p.MaxLowered, 100)
	if p.ErrorPenalty <= 0 {
		p.ErrorPenalty = 5
	}
	return p
}

// ServerWeight is the weight the agent advertises for one server, with the
// smoothed signals it was computed from.
type ServerWeight struct {
	// Percent is the weight to advertise, in percent of the server's
	// configured weight: MinWeight to 100.
	Percent int
	// Latency is the smoothed response time (HAProxy's rtime, or ttime
	// when rtime is 0 as in TCP mode, raised by the queue), in
	// milliseconds; 0 before the server's first request.
	Latency float64
	// ErrorRatio is the smoothed fraction (0 to 1) of requests that ended in
	// a 5xx, a response error or a connection error.
	ErrorRatio float64
	// Sampled is true once the server has carried traffic since the
	// Weigher started.
	Sampled bool
}

// Weigher turns HAProxy's per-server counters, read at each successful poll,
// into adaptive agent weights. It is pure: every call passes the time, and
// it keeps no goroutine. It is not safe for concurrent use: one poller owns
// it.
//
// At each Update, for each non-backup server that carried traffic since the
// previous poll (its "stot" rose):
//
//	latency sample  l = rtime (ttime if rtime is 0) x (1 + qcur / max(scur, 1))
//	error sample    e = Δ(hrsp_5xx + eresp + econ) / Δstot, at most 1
//	smoothing       L += a (l - L), E += a (e - E), a = 1 - 2^(-Δt / HalfLife)
//
// where Δt is the time since the server's previous sample (the first sample
// sets L and E directly). Then, with M and Em the medians of L and E over
// the usable servers that have samples, and K = Slack in milliseconds:
//
//	target = 100 x (M + K) / (L + K) x max(0, 1 - ErrorPenalty x max(0, E - Em))
//	target = MinWeight if target < 10 (an outlier), else clamp(target, MinWeight, 100)
//
// so a server as fast and clean as the median gets 100%, one twice as slow
// (beyond the slack) gets about 50%, and an erroring one is cut further.
// At most MaxLowered percent of the servers (at least one) may have a
// target below 100: those with the lowest targets (ties by name) keep them,
// the others get 100. The
// weight follows a lower target at once and rises towards a higher one by at
// most RecoveryRate x (time since the previous Update) points, so weights
// recover gradually and do not oscillate. A server without traffic since
// the previous poll keeps its weight and signals; a server that is not
// usable (down, drained) keeps its weight and is left out of the medians.
type Weigher struct {
	policy  WeightPolicy
	last    time.Time // previous Update
	servers map[string]*serverSignals
}

type serverSignals struct {
	counted bool // stot and errs hold a previous reading
	stot    int64
	errs    int64
	at      time.Time // last sample
	w       ServerWeight
}

// NewWeigher returns a Weigher that starts every server at 100%.
func NewWeigher(p WeightPolicy) *Weigher {
	return &Weigher{policy: p.withDefaults(), servers: map[string]*serverSignals{}}
}

// Update feeds one successful poll's servers, read at now, and returns the
// weight of every non-backup server by name. Servers missing from the poll
// are forgotten. The returned map is new at every call.
func (w *Weigher) Update(now time.Time, servers []haproxy.Server) map[string]ServerWeight {
	step := 0.0
	if !w.last.IsZero() && now.After(w.last) {
		step = now.Sub(w.last).Seconds()
	}
	w.last = now
	seen := make(map[string]bool, len(servers))
	for _, s := range servers {
		if s.Backup {
			continue
		}
		seen[s.Name] = true
		sig := w.servers[s.Name]
		if sig == nil {
			sig = &serverSignals{w: ServerWeight{Percent: 100}}
			w.servers[s.Name] = sig
		}
		w.sample(now, sig, s)
	}
	for name := range w.servers {
		if !seen[name] {
			delete(w.servers, name)
		}
	}
	var lats, errs []float64
	for _, s := range servers {
		if sig := w.servers[s.Name]; !s.Backup && s.Usable && sig.w.Sampled {
			lats = append(lats, sig.w.Latency)
			errs = append(errs, sig.w.ErrorRatio)
		}
	}
	medLat, medErr := median(lats), median(errs)
	targets := w.targets(servers, medLat, medErr)
	out := make(map[string]ServerWeight, len(w.servers))
	for _, s := range servers {
		sig := w.servers[s.Name]
		if sig == nil {
			continue
		}
		if target, ok := targets[s.Name]; ok {
			switch {
			case target < sig.w.Percent:
				sig.w.Percent = target
			case target > sig.w.Percent:
				sig.w.Percent = min(target, sig.w.Percent+int(math.Ceil(w.policy.RecoveryRate*step)))
			}
		}
		out[s.Name] = sig.w
	}
	return out
}

// sample folds one poll's counters of one server into its signals, when the
// server carried traffic since the previous poll.
func (w *Weigher) sample(now time.Time, sig *serverSignals, s haproxy.Server) {
	errs := s.Hrsp5xx + s.Eresp + s.Econ
	prevStot, prevErrs, counted := sig.stot, sig.errs, sig.counted
	sig.stot, sig.errs, sig.counted = s.Stot, errs, true
	if !counted || s.Stot < prevStot || errs < prevErrs {
		return // first reading, or counters reset (HAProxy restarted)
	}
	reqs := s.Stot - prevStot
	if reqs == 0 {
		return // no traffic: keep weight and signals
	}
	lat := float64(s.Rtime)
	if s.Rtime == 0 {
		lat = float64(s.Ttime)
	}
	lat *= 1 + float64(s.Qcur)/float64(max(s.Scur, 1))
	errRatio := min(float64(errs-prevErrs)/float64(reqs), 1)
	if !sig.w.Sampled {
		sig.w.Latency, sig.w.ErrorRatio, sig.w.Sampled = lat, errRatio, true
	} else {
		a := 1 - math.Exp2(-now.Sub(sig.at).Seconds()/w.policy.HalfLife.Seconds())
		sig.w.Latency += a * (lat - sig.w.Latency)
		sig.w.ErrorRatio += a * (errRatio - sig.w.ErrorRatio)
	}
	sig.at = now
}

// targets returns the target of every usable server sampled at this poll,
// with at most MaxLowered percent of the non-backup servers (at least one)
// below 100: the lowest targets keep theirs.
func (w *Weigher) targets(servers []haproxy.Server, medLat, medErr float64) map[string]int {
	type t struct {
		name   string
		target int
	}
	var low []t
	out := map[string]int{}
	total := 0
	now := w.last
	for _, s := range servers {
		if s.Backup {
			continue
		}
		total++
		sig := w.servers[s.Name]
		if sig == nil || !s.Usable || !sig.w.Sampled || !sig.at.Equal(now) {
			continue
		}
		target := w.target(sig.w, medLat, medErr)
		out[s.Name] = target
		if target < 100 {
			low = append(low, t{s.Name, target})
		}
	}
	// A server not sampled at this poll keeps its lowered weight: it
	// counts against the cap too.
	lowered := 0
	for _, s := range servers {
		if sig := w.servers[s.Name]; !s.Backup && sig != nil && sig.w.Percent < 100 {
			if _, sampled := out[s.Name]; !sampled {
				lowered++
			}
		}
	}
	allowed := max(1, total*w.policy.MaxLowered/100) - lowered
	slices.SortFunc(low, func(a, b t) int {
		if a.target != b.target {
			return a.target - b.target
		}
		return strings.Compare(a.name, b.name)
	})
	for i, l := range low {
		if i >= allowed {
			out[l.name] = 100
		}
	}
	return out
}

// target is the weight the formula in the Weigher doc gives one server.
func (w *Weigher) target(sw ServerWeight, medLat, medErr float64) int {
	k := float64(w.policy.Slack) / float64(time.Millisecond)
	t := 100 * (medLat + k) / (sw.Latency + k)
	if excess := sw.ErrorRatio - medErr; excess > 0 {
		t *= max(0, 1-w.policy.ErrorPenalty*excess)
	}
	if t < outlierBelow {
		return w.policy.MinWeight
	}
	return max(w.policy.MinWeight, min(100, int(math.Round(t))))
}

// outlierBelow is the target, in percent, under which a server is an
// outlier (ten times slower than the median, beyond the slack, or badly
// erroring) and gets MinWeight outright, as outlier detection ejects a
// host: a weight of a few percent would still put it in the 99th
// percentile of a small backend.
const outlierBelow = 10

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. It sorts xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// StaticAlgorithm reports whether HAProxy's balance algorithm, as shown in
// the backend row's "algo" column of `show stat`, is static: such a backend
// accepts only agent weights of 0% and 100% and ignores any other (verified
// on HAProxy 2.6: a "50%" reply leaves weight 100 and agent_status
// "CHECKED"). "static-rr" and "first" are always static. Hash algorithms
// ("source", "uri", "url_param", "hdr", "rdp-cookie") are static with the
// default "hash-type map-based", which `show stat` does not show: use
// "hash-type consistent" with adaptive weights.
func StaticAlgorithm(algo string) bool {
	return algo == "static-rr" || algo == "first"
}
