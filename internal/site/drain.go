package site

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
)

// Drain is the site drain (maintenance) state. The daemon persists it (see
// internal/control) so that a restart during maintenance never re-announces
// the site, and so that it remembers which servers its own agent drained.
type Drain struct {
	// Active is true while the site is drained: the zone is withdrawn
	// whatever the servers' health.
	Active bool
	// Reason is the operator's reason, shown in status and logs.
	Reason string
	// Since is when the drain started (Active) or ended (not Active).
	Since time.Time
	// Servers are the backend's servers our agent answers "drain" while
	// Active (agent.drain_servers), and "ready" once the drain has ended
	// until HAProxy shows each of them no longer drained. Sorted.
	Servers []string
}

// MaxReasonLen is the longest drain reason kept, in bytes: it goes into
// the state file, the status document, logs and the environment of
// notify.exec, so it must stay short.
const MaxReasonLen = 256

// CleanReason returns an operator's drain reason fit to keep: control
// characters (newlines, terminal escape sequences) become spaces, and the
// text is cut to MaxReasonLen bytes at a character boundary (an invalid
// UTF-8 byte becomes U+FFFD first).
func CleanReason(reason string) string {
	reason = strings.ToValidUTF8(reason, "\uFFFD")
	reason = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, reason)
	if len(reason) > MaxReasonLen {
		cut := MaxReasonLen
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	return strings.TrimSpace(reason)
}

// Drains reports whether the agent answers "drain" for server.
func (d Drain) Drains(server string) bool {
	return d.Active && slices.Contains(d.Servers, server)
}

// Readies reports whether the agent answers "ready" for server: a drain our
// own agent set, not yet seen undone.
func (d Drain) Readies(server string) bool {
	return !d.Active && slices.Contains(d.Servers, server)
}

// ErrStopped is returned by Poller.Drain, Resume and SetShed when the poller's
// Run has returned.
var ErrStopped = errors.New("poller stopped")

// drainRequest asks the Run goroutine to start (drain) or end a drain.
type drainRequest struct {
	drain  bool
	reason string
}

// Drain withdraws the site at once and keeps it withdrawn, across restarts
// when Config.SaveDrain persists it, until Resume. With
// Config.DrainServers and a backup server in the backend, the agent also
// answers "drain" for every usable non-backup server. A second Drain only
// updates the reason. The reason is kept as CleanReason returns it.
//
// The drain is applied by the Run goroutine, which publishes a new
// Snapshot (and calls onChange) before Drain returns. If the state cannot be
// saved, the site is still withdrawn but no server is drained (the daemon
// could not remember to undo it), and the error is returned.
func (p *Poller) Drain(ctx context.Context, reason string) (Drain, error) {
	req := drainRequest{drain: true, reason: CleanReason(reason)}
	return onRun(ctx, p, func() (Drain, error) { return p.applyDrain(req) })
}

// Resume ends a site drain: the site serves again as soon as the health
// policy allows, and the agent answers "ready" for the servers it drained.
// Resuming a site that is not drained does nothing. If the state cannot be
// saved the drain still ends, and the error is returned.
func (p *Poller) Resume(ctx context.Context) (Drain, error) {
	return onRun(ctx, p, func() (Drain, error) { return p.applyDrain(drainRequest{drain: false}) })
}

// onRun runs f on the Run goroutine, which owns the poller's state, and
// returns what f returns; ErrStopped once Run has returned, or ctx's error
// if Run does not take f before ctx ends.
func onRun[T any](ctx context.Context, p *Poller, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	reply := make(chan result, 1)
	call := func() {
		v, err := f()
		reply <- result{v, err}
	}
	var zero T
	select {
	case p.calls <- call:
	case <-p.stopped:
		return zero, ErrStopped
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	// The Run goroutine runs every call it has taken.
	r := <-reply
	return r.v, r.err
}

// applyDrain runs on the Run goroutine.
func (p *Poller) applyDrain(req drainRequest) (Drain, error) {
	now := p.now()
	prev := p.drain
	var next Drain
	switch {
	case req.drain && prev.Active:
		next = prev
		next.Reason = req.reason
	case req.drain:
		next = Drain{Active: true, Reason: req.reason, Since: now, Servers: p.serversToDrain(prev)}
	case !prev.Active:
		return prev, nil
	default:
		next = Drain{Since: now, Servers: prev.Servers}
	}
	var err error
	if p.cfg.SaveDrain != nil {
		if err = p.cfg.SaveDrain(next); err != nil && req.drain && !prev.Active && len(next.Servers) > len(prev.Servers) {
			// Never drain a server we may forget to undo.
			next.Servers = prev.Servers
			err = fmt.Errorf("%w (servers not drained)", err)
		}
	}
	p.drain = next
	ev := p.log.Info().Bool("drained", next.Active).Str("reason", next.Reason).Strs("servers", next.Servers)
	if err != nil {
		ev = p.log.Warn().Bool("drained", next.Active).Str("reason", next.Reason).Strs("servers", next.Servers).Err(err)
	}
	ev.Msg("site drain changed")
	p.publish(p.snap.Load().Stats, nil)
	return next, err
}

// serversToDrain lists the servers the agent drains with the site: none
// unless Config.DrainServers is set and the backend has a backup server
// (the other site) to take the stray clients; then every non-backup
// server that is not already drained or in maintenance (an operator's), and
// the servers an earlier drain of ours left drained.
func (p *Poller) serversToDrain(prev Drain) []string {
	st := p.snap.Load().Stats
	if !p.cfg.DrainServers || !hasBackup(st) {
		return prev.Servers
	}
	out := slices.Clone(prev.Servers)
	for _, s := range st.Servers {
		if s.Backup || strings.HasPrefix(s.Status, "DRAIN") || strings.HasPrefix(s.Status, "MAINT") {
			continue
		}
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// forgetUndrained keeps the drain's server list to the servers our agent
// still owns, and saves a change (a failed save is retried at the next
// poll):
//
//   - while the drain is active, a server the poll shows in MAINT was put
//     there by the operator (our agent never sends maint): it is the
//     operator's now, and gets neither "drain" nor, on resume, "ready";
//   - once the drain has ended, a server the poll shows no longer drained
//     (or gone) is forgotten, at least one poll interval after the end so
//     that a "drain" reply already on its way has landed.
func (p *Poller) forgetUndrained(now time.Time, stats haproxy.BackendStats) {
	d := p.drain
	if len(d.Servers) == 0 || (!d.Active && now.Sub(d.Since) < p.cfg.Interval) {
		return
	}
	status := map[string]string{}
	for _, s := range stats.Servers {
		status[s.Name] = s.Status
	}
	keep := make([]string, 0, len(d.Servers))
	for _, name := range d.Servers {
		st, ok := status[name]
		switch {
		case d.Active && (!ok || !strings.HasPrefix(st, "MAINT")):
			keep = append(keep, name)
		case !d.Active && ok && strings.HasPrefix(st, "DRAIN"):
			keep = append(keep, name)
		}
	}
	if len(keep) == len(d.Servers) && !p.saveFailed {
		return
	}
	d.Servers = keep
	if len(keep) == 0 {
		d.Servers = nil
	}
	p.drain = d
	p.saveFailed = false
	if p.cfg.SaveDrain != nil {
		if err := p.cfg.SaveDrain(d); err != nil {
			p.saveFailed = true
			p.log.Warn().Err(err).Msg("saving drain state failed; retrying at the next poll")
			return
		}
	}
	if d.Active {
		p.log.Info().Strs("drained_by_agent", keep).Msg("an operator took servers out of our drain (maintenance): our agent leaves them alone")
	} else {
		p.log.Info().Strs("still_drained", keep).Msg("servers back from our drain")
	}
}
