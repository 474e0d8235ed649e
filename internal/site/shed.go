package site

import (
	"context"
	"fmt"
	"time"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/shed"
)

// Shed is an operator's manual shed (`spdu-haproxy shed FRACTION`): a
// floor under the fraction of new clients the site sends elsewhere. The
// daemon persists it with the drain (internal/control), so a restart keeps
// it until it expires.
type Shed struct {
	// Fraction is the floor, from 0 (none) to 1 (every query for the
	// service names answered with the withdraw rcode).
	Fraction float64
	// Reason is the operator's reason (CleanReason applied).
	Reason string
	// Since is when it was set; Until when it ends (zero: never).
	Since, Until time.Time
}

// Active reports whether s is in force at now.
func (s Shed) Active(now time.Time) bool {
	return s.Fraction > 0 && (s.Until.IsZero() || now.Before(s.Until))
}

// Load is the site's load and what it sheds, as of the last successful
// poll.
type Load struct {
	// Utilization is shed.Utilization of the poll (1 = at capacity); Signal
	// names the signal that gave it, "" when none applies.
	Utilization float64
	Signal      string
	// Average is the controller's moving average of the utilization, the
	// value it acts on (shed.Controller); 0 when shedding is off.
	Average float64
	// Shed is the fraction in force, 0 to 1: the controller's (Auto) or
	// the operator's floor (Manual), whichever is higher.
	Shed float64
	// Auto is the controller's own fraction (0 when shedding is off).
	Auto float64
	// Manual is the operator's shed, zero when none is in force.
	Manual Shed
}

// OnShedChange makes the Run goroutine call f each time it publishes a
// snapshot whose Load.Shed differs from the previous one, so the answers
// follow a manual shed at once. It must be called before Run.
func (p *Poller) OnShedChange(f func()) { p.onShed = f }

// SetShed puts an operator's manual shed in force at once (a fraction of 0
// ends it), persisted with Config.SaveShed before it is published. until
// (zero: never) ends it by itself. If the state cannot be saved the shed
// is still in force and the error is returned.
func (p *Poller) SetShed(ctx context.Context, fraction float64, until time.Time, reason string) (Shed, error) {
	if fraction < 0 || fraction > 1 {
		return Shed{}, fmt.Errorf("shed fraction %g: must be from 0 to 1", fraction)
	}
	s := Shed{Fraction: fraction, Until: until, Reason: CleanReason(reason)}
	return onRun(ctx, p, func() (Shed, error) { return p.applyShed(s) })
}

// applyShed runs on the Run goroutine. It puts the new floor in force
// without stepping the controller, whose fraction follows polls only.
func (p *Poller) applyShed(s Shed) (Shed, error) {
	if s.Fraction > 0 {
		s.Since = p.now()
	} else {
		s = Shed{}
	}
	var err error
	if p.cfg.SaveShed != nil {
		err = p.cfg.SaveShed(s)
	}
	ev := p.log.Info()
	if err != nil {
		ev = p.log.Warn().Err(err)
	}
	ev.Float64("fraction", s.Fraction).Str("reason", s.Reason).Time("until", s.Until).Msg("manual shed changed")
	l := p.load
	l.Manual, l.Shed = s, max(l.Auto, s.Fraction)
	p.setLoad(l)
	p.publish(p.snap.Load().Stats, nil)
	return s, err
}

// updateLoad computes the load of a successful poll's stats and the
// fraction to shed, and ends an expired manual shed (saving it).
func (p *Poller) updateLoad(now time.Time, stats haproxy.BackendStats) {
	manual := p.load.Manual
	if manual.Fraction > 0 && !manual.Active(now) {
		p.log.Info().Float64("fraction", manual.Fraction).Str("reason", manual.Reason).Msg("manual shed expired")
		manual = Shed{}
		if p.cfg.SaveShed != nil {
			if err := p.cfg.SaveShed(manual); err != nil {
				p.log.Warn().Err(err).Msg("saving the end of a manual shed failed")
			}
		}
	}
	u, signal := shed.Utilization(stats, p.cfg.CapacityRPS)
	l := Load{Utilization: u, Signal: signal, Manual: manual, Shed: manual.Fraction}
	if p.shedder != nil {
		l.Shed = p.shedder.Update(now, u, manual.Fraction)
		l.Auto = p.shedder.Fraction()
		l.Average = p.shedder.Average()
	}
	p.setLoad(l)
}

// setLoad puts l in force and logs a change between shedding and not
// once, with the reason.
func (p *Poller) setLoad(l Load) {
	was := p.load.Shed > 0
	p.load = l
	switch {
	case l.Shed > 0 && !was:
		reason := fmt.Sprintf("utilization %.2f (%s), average %.2f, above target", l.Utilization, l.Signal, l.Average)
		if l.Manual.Fraction >= l.Auto {
			reason = "manual: " + l.Manual.Reason
		}
		p.log.Info().Float64("fraction", l.Shed).Float64("utilization", l.Utilization).Str("reason", reason).Msg("shedding load")
	case l.Shed == 0 && was:
		p.log.Info().Float64("utilization", l.Utilization).Str("signal", l.Signal).Msg("shedding stopped")
	}
}
