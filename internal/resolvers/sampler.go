package resolvers

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// SamplerConfig says what a Sampler asks and how often.
type SamplerConfig struct {
	// Name and Type are the question; default ServiceName, A.
	Name string
	Type uint16
	// Every is the interval between two queries to one resolver; a query
	// that has not finished does not delay the next. Default 100ms.
	Every time.Duration
	// Timeout bounds one query. Default 2s.
	Timeout time.Duration
	// Attempts is how many times a query is sent when no reply comes
	// within Timeout, as a stub resolver's resolv.conf "attempts" (glibc's
	// default is 2). Default 1: no retry.
	Attempts int
	// Limit is how long the sampler runs at most; it stops by itself then.
	// Default 5m.
	Limit time.Duration
	// DNSSEC asks as ResolveDNSSEC does (AD and DO bits), so that each
	// Result has the reply's AD bit and the RRSIGs' key tags.
	DNSSEC bool
}

// Sampler is a client that asks several resolvers the same question at a
// fixed interval and keeps every Result. Its Stop ends sampling and waits
// for the queries in flight (at most Attempts×Timeout); stopping twice
// does nothing more.
type Sampler struct {
	background
	cfg     SamplerConfig
	results map[*Resolver]*recorded[Result] // one per resolver, made before sampling starts
}

// StartSampler starts sampling rs with c and stops at cleanup at the latest.
func StartSampler(t testing.TB, c SamplerConfig, rs ...*Resolver) *Sampler {
	t.Helper()
	if c.Name == "" {
		c.Name = ServiceName
	}
	if c.Type == 0 {
		c.Type = 1 // A
	}
	if c.Every <= 0 {
		c.Every = 100 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Limit <= 0 {
		c.Limit = 5 * time.Minute
	}
	if c.Attempts <= 0 {
		c.Attempts = 1
	}
	s := &Sampler{background: newBackground(), cfg: c, results: map[*Resolver]*recorded[Result]{}}
	for _, r := range rs {
		s.results[r] = new(recorded[Result])
	}
	for _, r := range rs { // after every results[r] is made: run only reads the map
		s.wg.Go(func() { s.run(r) })
	}
	t.Cleanup(s.Stop)
	return s
}

// run asks r every Every until Stop or Limit. At most
// Attempts×Timeout/Every+1 queries are in flight, since each ends within
// Attempts×Timeout.
func (s *Sampler) run(r *Resolver) {
	tick := time.NewTicker(s.cfg.Every)
	defer tick.Stop()
	limit := time.NewTimer(s.cfg.Limit)
	defer limit.Stop()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		inflight.Go(func() { s.results[r].add(s.resolve(r)) })
		select {
		case <-s.stop:
			return
		case <-limit.C:
			return
		case <-tick.C:
		}
	}
}

// resolve asks r once, and again up to Attempts in all while no reply
// comes. The Result is the last attempt's, with Sent, Took and Attempts
// counted from the first.
func (s *Sampler) resolve(r *Resolver) Result {
	var res Result
	for i := 0; i < s.cfg.Attempts; i++ {
		next := resolve(r.Addr, s.cfg.Name, s.cfg.Type, s.cfg.Timeout, s.cfg.DNSSEC)
		if i > 0 {
			next.Sent, next.Took = res.Sent, time.Since(res.Sent)
		}
		next.Attempts = i + 1
		res = next
		if res.Rcode != NoReply {
			break
		}
	}
	return res
}

// Results returns r's results so far, in the order they were sent.
func (s *Sampler) Results(r *Resolver) []Result {
	return s.sorted(r, func(Result) bool { return true })
}

// Between returns r's results sent in [from, to), in order.
func (s *Sampler) Between(r *Resolver, from, to time.Time) []Result {
	return s.sorted(r, func(x Result) bool { return within(x.Sent, from, to) })
}

// sorted returns r's results keep accepts, in the order they were sent
// (they are recorded as they finish); none for a resolver not sampled.
func (s *Sampler) sorted(r *Resolver, keep func(Result) bool) []Result {
	rec := s.results[r]
	if rec == nil {
		return nil
	}
	out := rec.filter(keep)
	slices.SortFunc(out, func(a, b Result) int { return a.Sent.Compare(b.Sent) })
	return out
}
