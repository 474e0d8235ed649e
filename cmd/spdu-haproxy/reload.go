package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"syscall"

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
// sockets per address, the pool mode, and the drain state file. A reload
// that changes one of them keeps the running value and says so. Listener
// addresses are not among them: a reload moves them.
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
	dnsOpts, err := dnsserve.CheckConfig(dc)
	if err != nil {
		return err
	}
	var peers []probe.Peer
	var members map[string]pool.Member
	if r.pp != nil {
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
	r.dns.SetOptions(dnsOpts)
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

// sharesPort reports whether a failed bind of newAddr is the kernel
// refusing an address that overlaps oldAddr, still bound, on the same port
// (0.0.0.0:5555 narrowed to 127.0.0.1:5555, or the reverse): such a move
// cannot bind the new address first.
func sharesPort(err error, oldAddr, newAddr string) bool {
	_, op, err1 := net.SplitHostPort(oldAddr)
	_, np, err2 := net.SplitHostPort(newAddr)
	return errors.Is(err, syscall.EADDRINUSE) && err1 == nil && err2 == nil && op == np && op != "0"
}

// restartAgent binds and serves the agent of cfg again, after a move that
// stopped it early failed; a failure is logged (the agent is then down
// until the next successful reload).
func (r *reloader) restartAgent(cfg *config.Config) {
	a := r.newAgent(cfg)
	if err := a.Listen(cfg.Agent.Listen); err != nil {
		r.log.Error().Err(err).Msg("agent: cannot listen on the old address again after a failed move")
		return
	}
	r.agentSlot.replace(a.Run)
	r.agent = a
}

// restartMetrics is restartAgent for the metrics server.
func (r *reloader) restartMetrics(cfg *config.Config) {
	m, err := r.newMetrics(cfg.Metrics.Listen)
	if err != nil {
		r.log.Error().Err(err).Msg("metrics: cannot listen on the old address again after a failed move")
		return
	}
	r.metricsSlot.replace(m.Run)
}

// moveListeners moves every listener whose address next changes: the agent
// (agent.listen), the metrics server (metrics.listen, "off" included), the
// control socket (control.socket) and the DNS addresses (dns.listen). It
// binds all the new ones first; if one cannot be bound, it releases what it
// bound and returns an error naming the key, and nothing has changed. Then
// the new listeners serve and only after that the old ones are closed, so a
// component that moves is never without a listener. One case cannot bind
// first: a new address that overlaps the old one on the same port
// (sharesPort); the old listener is closed just before, and started again
// if the move fails. On success r.cur holds next's listener addresses.
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
	// undo restarts, in reverse order, the old listeners stopped early
	// (see sharesPort) when a later step fails.
	var undo []func()
	fail := func(err error) error {
		release()
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return err
	}
	// bind runs listen for a listener moving from oldAddr to newAddr. When
	// the kernel refuses the new address because the old listener holds
	// its port (sharesPort), it stops the old one (in s) first, binds
	// again, and leaves restart to undo.
	bind := func(key, oldAddr, newAddr string, s *slot, listen func() error, restart func()) error {
		err := listen()
		if err != nil && sharesPort(err, oldAddr, newAddr) {
			r.log.Warn().Str("old", oldAddr).Str("new", newAddr).Msg(key + " overlaps the old address on the same port: closing the old listener first")
			s.replace(nil)
			undo = append(undo, restart)
			err = listen()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	}
	if next.Agent.Listen != cur.Agent.Listen {
		a := r.newAgent(next)
		if err := bind("agent.listen", cur.Agent.Listen, next.Agent.Listen, r.agentSlot,
			func() error { return a.Listen(next.Agent.Listen) }, func() { r.restartAgent(cur) }); err != nil {
			return fail(err)
		}
		agent = a
	}
	if next.Control.Socket != cur.Control.Socket {
		ctl = r.newControl(next)
		if err := ctl.Listen(); err != nil {
			ctl = nil
			return fail(fmt.Errorf("control.socket: %w", err))
		}
	}
	if next.Metrics.Listen != cur.Metrics.Listen && next.Metrics.Listen != "off" {
		if err := bind("metrics.listen", cur.Metrics.Listen, next.Metrics.Listen, r.metricsSlot,
			func() (err error) { metricsSrv, err = r.newMetrics(next.Metrics.Listen); return err },
			func() { r.restartMetrics(cur) }); err != nil {
			metricsSrv = nil
			return fail(err)
		}
	}
	if !slices.Equal(next.DNS.Listen, cur.DNS.Listen) {
		// SetListen handles overlaps on the same port itself.
		if err := r.dns.SetListen(next.DNS.Listen); err != nil {
			return fail(fmt.Errorf("dns.listen: %w", err))
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
