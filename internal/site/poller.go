// Package site owns the site's live state: the poller reads HAProxy's service
// backend on a fixed interval, feeds the health policy, and publishes each
// result as an immutable Snapshot. Readers (the DNS server through a change
// callback, the agent-check responder, status output) only load snapshots;
// nothing outside the poller mutates site state.
package site

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
)

// StatSource reads one backend's statistics under ctx's deadline; in the
// daemon it is (*haproxy.Runtime).ShowStat.
type StatSource func(ctx context.Context, backend string) (haproxy.BackendStats, error)

// Config is what the poller needs from the configuration.
type Config struct {
	// Site is the site's name, a log field.
	Site string
	// Backend is the HAProxy backend to poll.
	Backend string
	// Interval is the time between polls; Timeout the deadline of each poll
	// (shorter than Interval).
	Interval, Timeout time.Duration
	// Policy is the health policy applied to each poll.
	Policy health.Policy
}

// Snapshot is one published view of the site. It is immutable once
// published: readers must not modify it or its slices.
type Snapshot struct {
	// Health is the policy's decision after the latest poll or check.
	Health health.State
	// Stats is the backend as of the last successful poll (zero before one).
	Stats haproxy.BackendStats
	// Polls counts polls done, successful or not.
	Polls uint64

	byName map[string]int // server name -> index in Stats.Servers
}

// Poller polls HAProxy and owns the site's health state.
type Poller struct {
	log      zerolog.Logger
	source   StatSource
	cfg      Config
	now      func() time.Time
	onChange func(health.State)

	snap  atomic.Pointer[Snapshot]
	ready chan struct{} // closed after the first poll

	// Owned by the Run goroutine only.
	tracker *health.Tracker
	lastErr string
	polls   uint64
}

// New returns a Poller that starts withdrawn. onChange, if not nil, is called
// from the Run goroutine each time the site switches between serving and
// withdrawn, after the new Snapshot is published; it must not block.
func New(logger zerolog.Logger, source StatSource, cfg Config, onChange func(health.State)) *Poller {
	p := &Poller{
		log:      logger.With().Str("component", "poller").Str("backend", cfg.Backend).Logger(),
		source:   source,
		cfg:      cfg,
		now:      time.Now,
		onChange: onChange,
		ready:    make(chan struct{}),
	}
	p.tracker = health.NewTracker(cfg.Policy, p.now())
	p.snap.Store(&Snapshot{Health: p.tracker.State()})
	return p
}

// Snapshot returns the latest published snapshot; never nil.
func (p *Poller) Snapshot() *Snapshot { return p.snap.Load() }

// Ready is closed once the first poll has finished, successful or not.
func (p *Poller) Ready() <-chan struct{} { return p.ready }

// Run polls at once and then every Interval until ctx is cancelled, and
// returns nil after its last poll has finished. A poll never outlives its
// Timeout, so Run returns within Timeout of cancellation.
func (p *Poller) Run(ctx context.Context) error {
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	p.pollOnce(ctx)
	close(p.ready)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			p.pollOnce(ctx)
		}
	}
}

func (p *Poller) pollOnce(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	start := p.now()
	stats, err := p.source(pctx, p.cfg.Backend)
	cancel()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // shutting down: not an observation
	}
	now := p.now()
	p.polls++
	p.logPollError(err)
	obs := health.Observation{At: now, Usable: stats.Usable, Total: stats.Total, Err: err}
	st, changed := p.tracker.Observe(obs)
	prev := p.snap.Load()
	next := &Snapshot{Health: st, Stats: prev.Stats, Polls: p.polls, byName: prev.byName}
	if err == nil {
		next.Stats = stats
		next.byName = make(map[string]int, len(stats.Servers))
		for i, sv := range stats.Servers {
			next.byName[sv.Name] = i
		}
	}
	p.snap.Store(next)
	p.log.Debug().Int("usable", st.Usable).Int("total", st.Total).Bool("serving", st.Serving).
		Dur("took", now.Sub(start)).Err(err).Msg("poll")
	if changed {
		p.log.Info().Bool("serving", st.Serving).Int("usable", st.Usable).Int("total", st.Total).
			Int("min_up", st.Required).Str("reason", st.Reason).Msg("site state changed")
		if p.onChange != nil {
			p.onChange(st)
		}
	}
}

// logPollError logs a poll error once per change of its text, and the
// recovery once, so a dead socket does not flood the log every poll.
func (p *Poller) logPollError(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == p.lastErr {
		return
	}
	if err != nil {
		p.log.Warn().Err(err).Msg("runtime API poll failed")
	} else {
		p.log.Info().Msg("runtime API poll recovered")
	}
	p.lastErr = msg
}

// HasServer reports whether the last successful poll saw a server of that
// name in the polled backend (backup servers included).
func (s *Snapshot) HasServer(name string) bool {
	_, ok := s.byName[name]
	return ok
}
