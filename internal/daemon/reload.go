package daemon

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// Reload swaps next in atomically while Run runs: first every component
// prepares its part (the DNS zone and options, the cookie secret and the
// peers' CA files are read, new listeners are bound), and if any fails,
// what was prepared is discarded and the error, naming the key, is
// returned with nothing changed; then every part is applied, which cannot
// fail. No query is dropped and a serving site is not withdrawn. Keys that
// need a restart (config.RestartChanges, config.KeepRestartKeys) keep their running values; their
// names are logged. It returns an error when Run is not running.
func (d *Daemon) Reload(next *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		return errors.New("daemon not running")
	}
	cur := d.cfg.Load()
	if keys := cur.RestartChanges(next); len(keys) > 0 {
		d.log.Warn().Strs("keys", keys).Msg("reload: these keys take effect at the next restart; running values kept")
		next = cur.KeepRestartKeys(next)
	}
	apply, err := d.prepare(cur, next)
	if err != nil {
		return err
	}
	apply()
	d.cfg.Store(next)
	if cur.Agent.Listen != next.Agent.Listen || cur.Metrics.Listen != next.Metrics.Listen ||
		cur.Control.Socket != next.Control.Socket || !slices.Equal(cur.DNS.Listen, next.DNS.Listen) {
		d.log.Info().Strs("dns_listen", next.DNS.Listen).Str("agent_listen", next.Agent.Listen).
			Str("metrics_listen", next.Metrics.Listen).Str("control_socket", next.Control.Socket).Msg("listeners moved")
	}
	d.log.Info().Msg("configuration reloaded")
	return nil
}

// prepare prepares every component for next and returns the function that
// applies them all. On error it has discarded what it prepared.
func (d *Daemon) prepare(cur, next *config.Config) (apply func(), err error) {
	var discard []func()
	defer func() {
		if err != nil {
			for i := len(discard) - 1; i >= 0; i-- {
				discard[i]()
			}
		}
	}()
	dnsCfg, err := d.dnsConfig(next)
	if err != nil {
		return nil, err
	}
	dnsPlan, err := d.dns.Prepare(dnsCfg)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	discard = append(discard, dnsPlan.Discard)
	agentPlan, err := d.agent.Prepare(agentConfig(next))
	if err != nil {
		return nil, err
	}
	discard = append(discard, func() { agentPlan.Discard() }) //nolint:errcheck // a failed rebind is logged by the slot's owner on its next move
	controlPlan, err := d.control.Prepare(d.controlConfig(next))
	if err != nil {
		return nil, err
	}
	discard = append(discard, func() { controlPlan.Discard() }) //nolint:errcheck // as above
	metricsMove, err := d.metrics.Prepare(next.Metrics.Listen)
	if err != nil {
		return nil, err
	}
	discard = append(discard, func() { metricsMove.Discard() }) //nolint:errcheck // as above
	var source site.StatSource                                  // nil keeps the running one
	if next.HAProxy.Socket != cur.HAProxy.Socket || next.HAProxy.Frontend != cur.HAProxy.Frontend {
		source = statSource(next)
	}
	pollerPlan, err := d.poller.Prepare(siteConfig(next, source))
	if err != nil {
		return nil, err
	}
	var proberApply func()
	if d.prober != nil {
		plan, err := d.prober.Prepare(proberConfig(next))
		if err != nil {
			return nil, err
		}
		proberApply = func() { d.prober.Apply(plan) }
	}
	policyPlan, err := d.publisher.Prepare(policy(next, d.opts.DryRun))
	if err != nil {
		return nil, err
	}
	notifyPlan, err := d.notifier.Prepare(notifyConfig(next))
	if err != nil {
		return nil, err
	}
	book := newAnswerBook(next)
	return func() {
		d.dns.Apply(dnsPlan)
		d.agent.Apply(agentPlan)
		d.control.Apply(controlPlan)
		d.metrics.Apply(metricsMove)
		d.poller.Apply(pollerPlan)
		if proberApply != nil {
			proberApply()
		}
		d.book.Store(book)
		d.publisher.Apply(policyPlan) // publishes again with the new book
		d.notifier.Apply(notifyPlan)
	}, nil
}
