package site

import (
	"context"

	"github.com/spdu/spdu-haproxy/internal/health"
)

// reconfigRequest asks the Run goroutine to apply a reloaded configuration.
type reconfigRequest struct {
	cfg    Config
	source StatSource
	done   chan struct{}
}

// Reconfigure applies a reloaded configuration without losing the site's
// state: the health counters, the drain and the weights carry over, so a
// reload never withdraws a serving site by itself. The backend, poll
// interval and timeout, health policy, agent mode and drain_servers change
// from the next poll on; the drain state and its persistence (cfg.Drain,
// cfg.SaveDrain) are kept from the running poller. source replaces the stat
// source when not nil (a changed runtime API socket). It returns ErrStopped
// when Run has returned, or ctx's error.
func (p *Poller) Reconfigure(ctx context.Context, cfg Config, source StatSource) error {
	req := reconfigRequest{cfg: cfg, source: source, done: make(chan struct{})}
	select {
	case p.reconfig <- req:
	case <-p.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	<-req.done
	return nil
}

// applyReconfig runs on the Run goroutine.
func (p *Poller) applyReconfig(req reconfigRequest) {
	defer close(req.done)
	old := p.cfg
	req.cfg.Drain, req.cfg.SaveDrain = old.Drain, old.SaveDrain
	p.cfg = req.cfg
	if req.source != nil {
		p.source = req.source
	}
	p.tracker.SetPolicy(req.cfg.Policy)
	switch {
	case req.cfg.Adaptive == nil:
		p.weigher, p.weights = nil, nil
	case old.Adaptive == nil || *old.Adaptive != *req.cfg.Adaptive:
		p.weigher = health.NewWeigher(*req.cfg.Adaptive)
	}
	p.log = p.baseLog.With().Str("component", "poller").Str("backend", req.cfg.Backend).Logger()
	p.log.Info().Dur("interval", req.cfg.Interval).Str("backend", req.cfg.Backend).Msg("poller reconfigured")
}
