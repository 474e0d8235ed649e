package main

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/control"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/metrics"
	"github.com/spdu/spdu-haproxy/internal/notify"
	"github.com/spdu/spdu-haproxy/internal/pool"
	"github.com/spdu/spdu-haproxy/internal/probe"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// reloader applies a reloaded configuration to the running components. It
// runs on run's goroutine only.
type reloader struct {
	log      zerolog.Logger
	cur      *config.Config
	poller   *site.Poller
	notifier *notify.Notifier
	dns      *dnsserve.Server
	pp       *poolParts // pool mode only
	// published receives each configuration once it is in force (readers
	// such as /status load it atomically).
	published func(*config.Config)

	// The listening components in service, the slots that run them and
	// their constructors, for a reload that moves a listener.
	agent       *haproxy.AgentServer
	ctl         *control.Server
	agentSlot   *slot
	ctlSlot     *slot
	metricsSlot *slot
	newAgent    func(*config.Config) *haproxy.AgentServer
	newControl  func(*config.Config) *control.Server
	newMetrics  func(addr string) (*metrics.Server, error)
}

// restartKeys lists the parts of the configuration that a reload cannot
// change in place: the site's name, the zone's apex, the number of UDP
// sockets per address, the pool mode, and the drain state file. A reload that changes one of them keeps the running value and says
// so. Listener addresses are not among them: a reload moves them.
func restartKeys(old, next *config.Config) []string {
	var keys []string
	diff := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	diff("site", old.Site, next.Site)
	diff("dns.zone", old.DNS.Zone, next.DNS.Zone)
	diff("dns.udp_sockets", old.DNS.UDPSockets, next.DNS.UDPSockets)
	diff("dns.mode", old.DNS.Mode, next.DNS.Mode)
	diff("control.state_file", old.Control.StateFile, next.Control.StateFile)
	return keys
}

// keepRunning returns next with the restart-only parts of cur.
func keepRunning(cur, next *config.Config) *config.Config {
	n := *next
	n.Site = cur.Site
	n.DNS.Zone, n.DNS.UDPSockets = cur.DNS.Zone, cur.DNS.UDPSockets
	n.DNS.Mode = cur.DNS.Mode
	n.Control.StateFile = cur.Control.StateFile
	return &n
}

// apply swaps next in. First the DNS part and the peers are checked whole
// (they read the cookie secret and CA files), then the listeners move
// (moveListeners: all or none); then the zone's records and TTLs, the DNS
// server options (identity, rate limiting, cookie secret, socket buffer,
// TCP limits), the poller (backend, socket, interval, health policy, agent
// mode), the control and agent settings, notifications and, in pool mode,
// the site's own addresses, the peers, dns.max_answers, dns.ttl_unstable
// and dns.all_down change at once. No query is dropped and a serving site
// is not withdrawn. Keys listed by restartKeys keep their running values
// until a restart.
func (r *reloader) apply(ctx context.Context, next *config.Config) error {
	if keys := restartKeys(r.cur, next); len(keys) > 0 {
		r.log.Warn().Strs("keys", keys).Msg("reload: these keys take effect at the next restart; running values kept")
		next = keepRunning(r.cur, next)
	}
	dc := dnsConfig(next)
	if err := dnsserve.CheckConfig(dc); err != nil {
		return err
	}
	var peers []probe.Peer
	var members map[string]pool.Member
	if r.pp != nil {
		var err error
		if peers, members, err = buildPeers(next); err != nil {
			return err
		}
	}
	if err := r.moveListeners(next); err != nil {
		return err
	}
	if err := r.dns.SetZone(dc); err != nil {
		return err
	}
	if err := r.dns.SetOptions(dc); err != nil {
		return err
	}
	sc, cs := siteConfig(next), controlSettingsOf(next)
	applyAgentMode(cs, &sc)
	var source site.StatSource
	if next.HAProxy.Socket != r.cur.HAProxy.Socket {
		source = haproxy.NewRuntime(next.HAProxy.Socket).ShowStat
	}
	if err := r.poller.Reconfigure(ctx, sc, source); err != nil {
		return err
	}
	if r.pp != nil {
		r.pp.reconfigure(next, peers, members)
	}
	r.agent.SetReadTimeout(next.Agent.ReadTimeout.Duration)
	r.ctl.SetConfig(controlConfig(cs, next.Site, next.HAProxy.Socket, sc))
	r.notifier.SetConfig(notify.Config{Exec: next.Notify.Exec, Webhook: next.Notify.Webhook, Timeout: next.Notify.Timeout.Duration})
	r.cur = next
	r.published(next)
	r.log.Info().Msg("configuration reloaded")
	return nil
}

// moveListeners moves every listener whose address next changes: the agent
// (agent.listen), the metrics server (metrics.listen, "off" included), the
// control socket (control.socket) and the DNS addresses (dns.listen). It
// binds all the new ones first; if one cannot be bound, it releases what it
// bound and returns an error naming the key, and nothing has changed. Then
// the new listeners serve and only after that the old ones are closed, so a
// component that moves is never without a listener. On success r.cur holds
// next's listener addresses.
func (r *reloader) moveListeners(next *config.Config) error {
	var agent *haproxy.AgentServer
	var ctl *control.Server
	var metricsSrv *metrics.Server
	// release closes what was bound, by running it with a cancelled
	// context, as start-up does.
	release := func() {
		done, cancel := context.WithCancel(context.Background())
		cancel()
		if agent != nil {
			agent.Run(done) //nolint:errcheck // releasing only
		}
		if ctl != nil {
			ctl.Run(done) //nolint:errcheck // releasing only
		}
		if metricsSrv != nil {
			metricsSrv.Run(done) //nolint:errcheck // releasing only
		}
	}
	cur := r.cur
	if next.Agent.Listen != cur.Agent.Listen {
		agent = r.newAgent(next)
		if err := agent.Listen(next.Agent.Listen); err != nil {
			return fmt.Errorf("agent.listen: %w", err)
		}
	}
	if next.Control.Socket != cur.Control.Socket {
		ctl = r.newControl(next)
		if err := ctl.Listen(); err != nil {
			ctl = nil
			release()
			return fmt.Errorf("control.socket: %w", err)
		}
	}
	if next.Metrics.Listen != cur.Metrics.Listen && next.Metrics.Listen != "off" {
		var err error
		if metricsSrv, err = r.newMetrics(next.Metrics.Listen); err != nil {
			release()
			return fmt.Errorf("metrics.listen: %w", err)
		}
	}
	if !slices.Equal(next.DNS.Listen, cur.DNS.Listen) {
		if err := r.dns.SetListen(next.DNS.Listen); err != nil {
			release()
			return fmt.Errorf("dns.listen: %w", err)
		}
	}

	// Every new listener is bound: put them in service, stopping the old.
	if agent != nil {
		r.agentSlot.replace(agent.Run)
		r.agent = agent
	}
	if ctl != nil {
		r.ctlSlot.replace(ctl.Run)
		r.ctl = ctl
	}
	switch {
	case metricsSrv != nil:
		r.metricsSlot.replace(metricsSrv.Run)
	case next.Metrics.Listen != cur.Metrics.Listen: // now "off"
		r.metricsSlot.replace(nil)
	}
	moved := *cur
	moved.Agent.Listen, moved.Control.Socket = next.Agent.Listen, next.Control.Socket
	moved.Metrics.Listen, moved.DNS.Listen = next.Metrics.Listen, next.DNS.Listen
	if !reflect.DeepEqual(&moved, cur) {
		r.log.Info().Strs("dns_listen", moved.DNS.Listen).Str("agent_listen", moved.Agent.Listen).
			Str("metrics_listen", moved.Metrics.Listen).Str("control_socket", moved.Control.Socket).Msg("listeners moved")
		r.cur = &moved
		r.published(&moved)
	}
	return nil
}
