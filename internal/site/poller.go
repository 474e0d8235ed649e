// Package site owns the site's live state: the poller reads HAProxy's service
// backend on a fixed interval, feeds the health policy and the adaptive
// weights, applies the operator's site drain, and publishes each result as an
// immutable Snapshot. Readers (the answer publisher, kicked by a change
// callback, the agent-check responder, the control socket, the status
// document and metrics) only load snapshots; nothing outside the poller's Run goroutine mutates site state,
// and drain and shed requests reach it as calls over a channel. It does not persist anything
// itself: Config.SaveDrain does.
package site

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/shed"
)

// StatSource reads one backend's statistics under ctx's deadline; in the
// daemon it is (*haproxy.Runtime).ShowStat.
type StatSource func(ctx context.Context, backend string) (haproxy.BackendStats, error)

// Config is what the poller needs from the configuration.
type Config struct {
	// Source reads the backend's statistics: in the daemon
	// (*haproxy.Runtime).ShowStat on haproxy.socket. In a reload (Prepare)
	// nil keeps the running source.
	Source StatSource
	// Site is the site's name, a log field.
	Site string
	// Backend is the HAProxy backend to poll.
	Backend string
	// Interval is the time between polls; Timeout the deadline of each poll
	// (shorter than Interval).
	Interval, Timeout time.Duration
	// Policy is the health policy applied to each poll.
	Policy health.Policy
	// Adaptive, when not nil, turns on adaptive agent weights with this
	// policy (agent.mode = "adaptive"); nil advertises 100% for every
	// server (agent.mode = "static").
	Adaptive *health.WeightPolicy
	// DrainServers makes a site drain also drain every server through the
	// agent, when the backend has a backup server (agent.drain_servers).
	DrainServers bool
	// Drain is the drain state restored at start, from the state file.
	Drain Drain
	// SaveDrain, if not nil, persists the drain state; it is called from the
	// Run goroutine at every drain change, before the change is published.
	SaveDrain func(Drain) error
	// AutoShed, when not nil, turns on load shedding's controller with
	// this policy ([shed] enabled); nil sheds only what an operator asks.
	AutoShed *shed.Config
	// CapacityRPS is the operator-declared capacity in requests per second
	// (shed.capacity_rps), 0 when none: see shed.Utilization.
	CapacityRPS float64
	// ManualShed is the operator's shed restored at start, from the state
	// file; SaveShed, if not nil, persists a change of it like SaveDrain.
	ManualShed Shed
	SaveShed   func(Shed) error
}

// Snapshot is one published view of the site. It is immutable once
// published: readers must not modify it or its maps and slices.
type Snapshot struct {
	// Health is the site's state after the latest poll or drain change: the
	// policy's decision, withdrawn while Drain.Active.
	Health health.State
	// Stats is the backend as of the last successful poll (zero before one).
	Stats haproxy.BackendStats
	// Polls counts polls done, successful or not.
	Polls uint64
	// PollErrors counts failed polls.
	PollErrors uint64
	// LastPollDuration is how long the latest poll took, successful or not.
	LastPollDuration time.Duration
	// LastPollAt is when the latest poll finished; zero before the first.
	LastPollAt time.Time
	// Weights maps each non-backup server to the weight the agent
	// advertises, in percent of its configured weight (1 to 100). Servers
	// missing from it get 100%.
	Weights map[string]int
	// StaticAlgo is true when adaptive weights are on but the backend's
	// balance algorithm accepts only 0% and 100% (static-rr, first): every
	// server is then advertised 100%.
	StaticAlgo bool
	// Drain is the site drain state.
	Drain Drain
	// Load is the site's utilization and the fraction it sheds.
	Load Load

	byName map[string]int // server name -> index in Stats.Servers
}

// Poller polls HAProxy and owns the site's health state.
type Poller struct {
	log      zerolog.Logger
	cfg      Config
	now      func() time.Time
	onChange func(health.State)
	onShed   func() // see OnShedChange

	snap    atomic.Pointer[Snapshot]
	ready   chan struct{} // closed after the first poll
	stopped chan struct{} // closed when Run returns
	calls   chan func()   // drain, resume and manual shed, run by Run (onRun)
	// pending is a reconfiguration from Apply that Run has not applied;
	// wake tells Run about it.
	pending atomic.Pointer[Plan]
	wake    chan struct{}
	baseLog zerolog.Logger // the logger given to New

	// Owned by the Run goroutine only.
	tracker    *health.Tracker
	weigher    *health.Weigher // nil in static mode
	weights    map[string]int
	staticAlgo bool
	drain      Drain
	saveFailed bool             // the last SaveDrain of forgetUndrained failed
	shedder    *shed.Controller // nil when automatic shedding is off
	load       Load             // the manual shed in force is load.Manual
	lastErr    string
	polls      uint64
	pollErrors uint64
	pollTook   time.Duration
	pollAt     time.Time
}

// New returns a Poller that starts withdrawn (and drained, if cfg.Drain is
// active). onChange, if not nil, is called from the Run goroutine each time
// the site switches between serving and withdrawn, after the new Snapshot
// is published; it must not block. It returns Prepare's errors.
func New(logger zerolog.Logger, cfg Config, onChange func(health.State)) (*Poller, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Source == nil {
		return nil, errors.New("poller: no stat source")
	}
	p := &Poller{
		log:      logger.With().Str("component", "poller").Str("backend", cfg.Backend).Logger(),
		cfg:      cfg,
		now:      time.Now,
		onChange: onChange,
		ready:    make(chan struct{}),
		stopped:  make(chan struct{}),
		calls:    make(chan func()),
		wake:     make(chan struct{}, 1),
		baseLog:  logger,
		drain:    cfg.Drain,
	}
	if cfg.Adaptive != nil {
		p.weigher = health.NewWeigher(*cfg.Adaptive)
	}
	if cfg.AutoShed != nil {
		p.shedder = shed.NewController(*cfg.AutoShed)
	}
	p.load = Load{Manual: cfg.ManualShed, Shed: cfg.ManualShed.Fraction}
	p.tracker = health.NewTracker(cfg.Policy, p.now())
	p.snap.Store(&Snapshot{Health: p.siteState(p.tracker.State()), Drain: p.drain, Load: p.load})
	return p, nil
}

// Snapshot returns the latest published snapshot; never nil.
func (p *Poller) Snapshot() *Snapshot { return p.snap.Load() }

// Ready is closed once the first poll has finished, successful or not.
func (p *Poller) Ready() <-chan struct{} { return p.ready }

// Run polls at once and then every Interval, and serves Drain and Resume,
// until ctx is cancelled; it returns nil after its last poll has finished. A
// poll never outlives its Timeout, so Run returns within Timeout of
// cancellation.
func (p *Poller) Run(ctx context.Context) error {
	defer close(p.stopped)
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
		case call := <-p.calls:
			call()
		case <-p.wake:
			interval := p.cfg.Interval
			p.applyPending()
			if p.cfg.Interval != interval {
				tick.Reset(p.cfg.Interval)
			}
		}
	}
}

func (p *Poller) pollOnce(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	start := p.now()
	stats, err := p.cfg.Source(pctx, p.cfg.Backend)
	cancel()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // shutting down: not an observation
	}
	now := p.now()
	p.polls++
	p.pollTook, p.pollAt = now.Sub(start), now
	if err != nil {
		p.pollErrors++
	}
	p.logPollError(err)
	obs := health.Observation{At: now, Usable: stats.Usable, Total: stats.Total, Err: err}
	st, _ := p.tracker.Observe(obs)
	if err != nil {
		stats = p.snap.Load().Stats
	} else {
		p.updateWeights(now, stats)
		p.forgetUndrained(now, stats)
		p.updateLoad(now, stats)
	}
	p.publish(stats, &err)
	p.log.Debug().Int("usable", st.Usable).Int("total", st.Total).Bool("serving", p.snap.Load().Health.Serving).
		Dur("took", p.pollTook).Err(err).Msg("poll")
}

// publish stores a new Snapshot from stats and the Run goroutine's state,
// and reports a change of serving. pollErr is nil when no poll happened
// (a drain change).
func (p *Poller) publish(stats haproxy.BackendStats, pollErr *error) {
	prev := p.snap.Load()
	st := p.siteState(p.tracker.State())
	next := &Snapshot{
		Health: st, Stats: stats, Polls: p.polls, PollErrors: p.pollErrors,
		LastPollDuration: p.pollTook, LastPollAt: p.pollAt,
		Weights: p.weights, StaticAlgo: p.staticAlgo, Drain: p.drain, Load: p.load, byName: prev.byName,
	}
	if pollErr != nil && *pollErr == nil {
		next.byName = make(map[string]int, len(stats.Servers))
		for i, sv := range stats.Servers {
			next.byName[sv.Name] = i
		}
	}
	p.snap.Store(next)
	if next.Load.Shed != prev.Load.Shed && p.onShed != nil {
		p.onShed()
	}
	if st.Serving == prev.Health.Serving {
		return
	}
	p.log.Info().Bool("serving", st.Serving).Int("usable", st.Usable).Int("total", st.Total).
		Int("min_up", st.Required).Str("reason", st.Reason).Msg("site state changed")
	if p.onChange != nil {
		p.onChange(st)
	}
}

// siteState is the policy's state, overridden while the site is drained.
// After a drain, Since is no earlier than the drain's end.
func (p *Poller) siteState(st health.State) health.State {
	d := p.drain
	switch {
	case d.Active:
		st.Serving = false
		st.Reason = "drained: " + d.Reason
		st.Since = d.Since
	case !d.Since.IsZero() && d.Since.After(st.Since):
		st.Since = d.Since
	}
	return st
}

// updateWeights computes the adaptive weights from a successful poll, and
// warns once when the backend's algorithm ignores them.
func (p *Poller) updateWeights(now time.Time, stats haproxy.BackendStats) {
	if p.weigher == nil {
		return
	}
	ws := p.weigher.Update(now, stats.Servers)
	static := health.StaticAlgorithm(stats.Algo)
	if static && !p.staticAlgo {
		p.log.Warn().Str("algo", stats.Algo).Msg("adaptive weights have no effect: the backend's balance algorithm accepts only 0% and 100%; advertising 100%")
	}
	p.staticAlgo = static
	weights := make(map[string]int, len(ws))
	for name, w := range ws {
		weights[name] = w.Percent
		if static {
			weights[name] = 100
		}
		if old, ok := p.weights[name]; ok && old != weights[name] {
			p.log.Debug().Str("server", name).Int("from", old).Int("to", weights[name]).
				Float64("latency_ms", w.Latency).Float64("error_ratio", w.ErrorRatio).Msg("weight changed")
		}
	}
	p.weights = weights
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

// SpareCapacity is the spare capacity the site would offer to new clients,
// from 0 to 1, whatever its state: health.Capacity of the last successful
// poll, lowered by the fraction it sheds (x (1 - Load.Shed)). The pool
// policy orders this site by it.
func (s *Snapshot) SpareCapacity() float64 {
	return health.Capacity(s.Health.Usable, s.Health.Total) * (1 - s.Load.Shed)
}

// Capacity is SpareCapacity while the site serves, 0 while it is withdrawn
// or drained: what the status document publishes to peers.
func (s *Snapshot) Capacity() float64 {
	if !s.Health.Serving {
		return 0
	}
	return s.SpareCapacity()
}

// Weight returns the weight the agent advertises for server, in percent.
func (s *Snapshot) Weight(server string) int {
	if w, ok := s.Weights[server]; ok {
		return w
	}
	return 100
}

// AgentReply is the agent-check reply for an agent-send naming backend (""
// when the request names only the server) and server: health.Reply applied
// to this snapshot's knowledge of the server, its weight and the drain.
//
// A server our drain owns gets "drain" only until a poll shows it drained:
// the drain sticks in HAProxy until "ready", and repeating it would turn an
// operator's later `set server ... state maint` back into a drain.
func (s *Snapshot) AgentReply(backend, server string) string {
	known := (backend == "" || backend == s.Stats.Backend) && s.HasServer(server)
	drain := s.Drain.Drains(server)
	if drain && strings.HasPrefix(s.server(server).Status, "DRAIN") {
		return haproxy.AgentNoChange
	}
	return health.Reply(health.AgentInput{
		Known:  known,
		Weight: s.Weight(server),
		Drain:  drain,
		Ready:  s.Drain.Readies(server),
	})
}

// server returns the named server of the last successful poll, or a zero
// Server.
func (s *Snapshot) server(name string) haproxy.Server {
	if i, ok := s.byName[name]; ok {
		return s.Stats.Servers[i]
	}
	return haproxy.Server{}
}

// hasBackup reports whether the backend has a backup server.
func hasBackup(st haproxy.BackendStats) bool {
	for _, s := range st.Servers {
		if s.Backup {
			return true
		}
	}
	return false
}
