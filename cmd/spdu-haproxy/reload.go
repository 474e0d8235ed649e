package main

import (
	"context"
	"reflect"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/notify"
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
	// published receives each configuration once it is in force (readers
	// such as /status load it atomically).
	published func(*config.Config)
}

// restartKeys lists the parts of the configuration that a reload cannot
// change in place: listeners and server options bound at start. A reload
// that changes one of them keeps the running value and says so.
func restartKeys(old, next *config.Config) []string {
	var keys []string
	diff := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	diff("site", old.Site, next.Site)
	diff("dns.listen", old.DNS.Listen, next.DNS.Listen)
	diff("dns.identity", old.DNS.Identity, next.DNS.Identity)
	diff("dns.cookie_secret_file", old.DNS.CookieSecretFile, next.DNS.CookieSecretFile)
	diff("dns.udp_sockets", old.DNS.UDPSockets, next.DNS.UDPSockets)
	diff("dns.udp_read_buffer", old.DNS.UDPReadBuffer, next.DNS.UDPReadBuffer)
	diff("dns.tcp_*", []any{old.DNS.TCPMaxConnections, old.DNS.TCPIdleTimeout, old.DNS.TCPQueryTimeout},
		[]any{next.DNS.TCPMaxConnections, next.DNS.TCPIdleTimeout, next.DNS.TCPQueryTimeout})
	diff("dns.rrl", old.DNS.RRL, next.DNS.RRL)
	diff("dns.mode", old.DNS.Mode, next.DNS.Mode)
	diff("peers", old.Peers, next.Peers)
	diff("agent.listen", old.Agent.Listen, next.Agent.Listen)
	diff("agent.read_timeout", old.Agent.ReadTimeout, next.Agent.ReadTimeout)
	diff("metrics.listen", old.Metrics.Listen, next.Metrics.Listen)
	diff("control", old.Control, next.Control)
	diff("haproxy.frontend", old.HAProxy.Frontend, next.HAProxy.Frontend)
	return keys
}

// apply swaps next in: the zone's records and TTLs, the poller (backend,
// socket, interval, health policy, agent mode) and notifications change at
// once, without dropping a query and without withdrawing a serving site.
// Keys listed by restartKeys keep their running values until a restart.
func (r *reloader) apply(ctx context.Context, next *config.Config) error {
	if keys := restartKeys(r.cur, next); len(keys) > 0 {
		r.log.Warn().Strs("keys", keys).Msg("reload: these keys take effect at the next restart; running values kept")
		next = keepRunning(r.cur, next)
	}
	if err := r.dns.SetZone(dnsConfig(next)); err != nil {
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
	r.notifier.SetConfig(notify.Config{Exec: next.Notify.Exec, Webhook: next.Notify.Webhook, Timeout: next.Notify.Timeout.Duration})
	r.cur = next
	r.published(next)
	r.log.Info().Msg("configuration reloaded")
	return nil
}

// keepRunning returns next with the restart-only parts of cur.
func keepRunning(cur, next *config.Config) *config.Config {
	n := *next
	n.Site = cur.Site
	n.DNS.Listen, n.DNS.Identity, n.DNS.CookieSecretFile = cur.DNS.Listen, cur.DNS.Identity, cur.DNS.CookieSecretFile
	n.DNS.UDPSockets, n.DNS.UDPReadBuffer = cur.DNS.UDPSockets, cur.DNS.UDPReadBuffer
	n.DNS.TCPMaxConnections, n.DNS.TCPIdleTimeout, n.DNS.TCPQueryTimeout = cur.DNS.TCPMaxConnections, cur.DNS.TCPIdleTimeout, cur.DNS.TCPQueryTimeout
	n.DNS.RRL, n.DNS.Mode, n.Peers = cur.DNS.RRL, cur.DNS.Mode, cur.Peers
	n.Agent.Listen, n.Agent.ReadTimeout = cur.Agent.Listen, cur.Agent.ReadTimeout
	n.Metrics, n.Control, n.HAProxy.Frontend = cur.Metrics, cur.Control, cur.HAProxy.Frontend
	return &n
}
