package site

import (
	"errors"
	"fmt"

	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/shed"
)

// Plan is a prepared reconfiguration of the poller, from Prepare.
type Plan struct {
	cfg Config
}

// Prepare checks cfg for Apply: the interval must be positive and longer
// than the timeout, and rise and fall at least 1. It changes nothing. A
// nil cfg.Source keeps the running source (the runtime API socket did not
// change).
func (p *Poller) Prepare(cfg Config) (*Plan, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Plan{cfg: cfg}, nil
}

// check validates the parts of c the poller relies on.
func (c *Config) check() error {
	switch {
	case c.Interval <= 0 || c.Timeout <= 0 || c.Timeout >= c.Interval:
		return fmt.Errorf("poller: timeout %s must be positive and shorter than the interval %s", c.Timeout, c.Interval)
	case c.Policy.Rise < 1 || c.Policy.Fall < 1:
		return errors.New("poller: rise and fall must be at least 1")
	}
	return nil
}

// Apply hands a prepared configuration to Run, which puts it in force
// before its next poll, without losing the site's state: the health
// counters, the drain and the weights carry over, so a reload never
// withdraws a serving site by itself. The backend, poll interval and
// timeout, health policy, agent mode and drain_servers change from the
// next poll on; the drain state and its persistence (Drain, SaveDrain) are
// kept from the running poller. It never blocks; after Run has returned
// it does nothing.
func (p *Poller) Apply(plan *Plan) {
	p.pending.Store(plan)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// applyPending runs on the Run goroutine.
func (p *Poller) applyPending() {
	plan := p.pending.Swap(nil)
	if plan == nil {
		return
	}
	old := p.cfg
	next := plan.cfg
	next.Drain, next.SaveDrain = old.Drain, old.SaveDrain
	next.ManualShed, next.SaveShed = old.ManualShed, old.SaveShed
	switch {
	case next.AutoShed == nil:
		p.shedder = nil
	case p.shedder == nil:
		p.shedder = shed.NewController(*next.AutoShed)
	default:
		p.shedder.SetConfig(*next.AutoShed)
	}
	if next.Source == nil {
		next.Source = old.Source
	}
	p.cfg = next
	p.tracker.SetPolicy(next.Policy)
	switch {
	case next.Adaptive == nil:
		p.weigher, p.weights = nil, nil
	case old.Adaptive == nil || *old.Adaptive != *next.Adaptive:
		p.weigher = health.NewWeigher(*next.Adaptive)
	}
	p.log = p.baseLog.With().Str("component", "poller").Str("backend", next.Backend).Logger()
	p.log.Info().Dur("interval", next.Interval).Msg("poller reconfigured")
}
