package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/control"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/notify"
	"github.com/spdu/spdu-haproxy/internal/pool"
	"github.com/spdu/spdu-haproxy/internal/probe"
	"github.com/spdu/spdu-haproxy/internal/shed"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// This file maps the configuration onto each component's own settings:
// plain functions of a validated *config.Config, used alike at start and
// on every reload, so the two can never disagree.

// dnsConfig returns the DNS server's settings (keys dns.* and dnssec.*),
// with the side file reader of the daemon's options and the DNSSEC keys
// read with its key reader. A key that cannot be read or used is an error
// naming it.
func (d *Daemon) dnsConfig(cfg *config.Config) (dnsserve.Config, error) {
	ks, err := LoadKeySet(cfg, d.opts.ReadKeyFile)
	if err != nil {
		return dnsserve.Config{}, err
	}
	var signing *dnsserve.Signing
	if ks != nil {
		signing = &dnsserve.Signing{Keys: ks, Validity: cfg.DNSSEC.SignatureValidity.Duration,
			Refresh: cfg.DNSSEC.Refresh.Duration, DNSKEYTTL: cfg.DNSSEC.DNSKEYTTL.Duration}
	}
	recs := make(map[string]dnsserve.Records, len(cfg.DNS.Records))
	for owner, r := range cfg.DNS.Records {
		a, aaaa := r.Addrs()
		recs[strings.ToLower(owner)] = dnsserve.Records{A: a, AAAA: aaaa}
	}
	// dnsserve reads zero as "default", so "off" is passed as -1.
	rate, slip := *cfg.DNS.RRL.Rate, *cfg.DNS.RRL.Slip
	if rate == 0 {
		rate = -1
	}
	if slip == 0 {
		slip = -1
	}
	var whitelist []netip.Prefix
	for _, w := range cfg.DNS.RRL.Whitelist {
		whitelist = append(whitelist, netip.MustParsePrefix(w)) // validated by config
	}
	return dnsserve.Config{
		Zone:             cfg.DNS.Zone,
		TTL:              cfg.DNS.TTL.Duration,
		Nameservers:      cfg.DNS.Nameservers,
		Hostmaster:       cfg.DNS.Hostmaster,
		Withdraw:         cfg.DNS.Withdraw.Rcode(),
		Records:          recs,
		Listen:           cfg.DNS.Listen,
		Identity:         cfg.Site,
		HideIdentity:     !*cfg.DNS.Identity,
		RRL:              dnsserve.RRL{Rate: rate, Slip: slip, Whitelist: whitelist, Loopback: cfg.DNS.RRL.Loopback},
		CookieSecretFile: cfg.DNS.CookieSecretFile,
		ReadFile:         d.opts.ReadSideFile,
		UDPSockets:       cfg.DNS.UDPSockets,
		UDPReadBuffer:    cfg.DNS.UDPReadBuffer,
		TCPMaxConns:      cfg.DNS.TCPMaxConnections,
		TCPIdleTimeout:   cfg.DNS.TCPIdleTimeout.Duration,
		TCPQueryTimeout:  cfg.DNS.TCPQueryTimeout.Duration,
		DNSSEC:           signing,
	}, nil
}

// siteConfig returns the poller's settings (keys haproxy.*, health.* and
// the agent mode). source is the stat source; nil keeps the running one on
// a reload.
func siteConfig(cfg *config.Config, source site.StatSource) site.Config {
	sc := site.Config{
		Source:   source,
		Site:     cfg.Site,
		Backend:  cfg.HAProxy.Backend,
		Interval: cfg.HAProxy.PollInterval.Duration,
		Timeout:  cfg.HAProxy.PollTimeout.Duration,
		Policy: health.Policy{
			MinUp:      health.Quorum{Count: cfg.Health.MinUp.Count, Percent: cfg.Health.MinUp.Percent},
			Rise:       cfg.Health.Rise,
			Fall:       cfg.Health.Fall,
			StaleAfter: cfg.HAProxy.StaleAfter.Duration,
		},
		DrainServers: cfg.Agent.DrainServers,
		CapacityRPS:  cfg.Shed.CapacityRPS,
	}
	if cfg.Shed.Enabled {
		sc.AutoShed = &shed.Config{Target: cfg.Shed.Target, MaxFraction: cfg.Shed.MaxFraction, Gain: cfg.Shed.Gain,
			MaxStep: cfg.Shed.MaxStep, Deadband: cfg.Shed.Deadband, Window: cfg.DNS.TTL.Duration}
	}
	if cfg.Agent.Mode == config.AgentAdaptive {
		sc.Adaptive = &health.WeightPolicy{HalfLife: cfg.Agent.HalfLife.Duration, MinWeight: *cfg.Agent.MinWeight,
			RecoveryRate: float64(cfg.Agent.RecoveryRate), Slack: cfg.Agent.LatencySlack.Duration, MaxLowered: cfg.Agent.MaxLowered}
	}
	return sc
}

// statSource returns the poller's source for haproxy.socket: the backend,
// and the frontend's row in the same request when haproxy.frontend is set
// (load shedding's signal).
func statSource(cfg *config.Config) site.StatSource {
	rt, fe := haproxy.NewRuntime(cfg.HAProxy.Socket), cfg.HAProxy.Frontend
	return func(ctx context.Context, backend string) (haproxy.BackendStats, error) {
		return rt.ShowSite(ctx, backend, fe)
	}
}

// agentConfig returns the agent server's settings (keys agent.listen and
// agent.read_timeout).
func agentConfig(cfg *config.Config) haproxy.AgentConfig {
	return haproxy.AgentConfig{Listen: cfg.Agent.Listen, ReadTimeout: cfg.Agent.ReadTimeout.Duration}
}

// controlConfig returns the control server's settings (keys control.* and
// haproxy.frontend). drain -wait watches the frontend row the poller reads
// with every poll (statSource): no second runtime API connection.
func (d *Daemon) controlConfig(cfg *config.Config) control.Config {
	cc := control.Config{Socket: cfg.Control.Socket, QuietPeriod: cfg.Control.QuietPeriod.Duration, PollInterval: cfg.HAProxy.PollInterval.Duration}
	if fe := cfg.HAProxy.Frontend; fe != "" {
		cc.Frontend = func() (haproxy.FrontendStats, error) { return polledFrontend(d.poller.Snapshot(), fe) }
	}
	return cc
}

// polledFrontend returns the row of frontend fe in snap, the poller's last
// snapshot, or an error when its last poll failed (the snapshot then keeps
// older statistics) or did not read fe.
func polledFrontend(snap *site.Snapshot, fe string) (haproxy.FrontendStats, error) {
	switch {
	case snap.Polls == 0:
		return haproxy.FrontendStats{}, fmt.Errorf("frontend %s: not polled yet", fe)
	case !snap.Health.LastGood.Equal(snap.LastPollAt):
		return haproxy.FrontendStats{}, fmt.Errorf("frontend %s: last poll failed: %s", fe, snap.Health.LastError)
	case snap.Stats.Frontend == nil || snap.Stats.Frontend.Frontend != fe:
		return haproxy.FrontendStats{}, fmt.Errorf("frontend %s: not in the last poll", fe)
	}
	return *snap.Stats.Frontend, nil
}

// proberConfig returns the peer prober's settings ([[peers]]).
func proberConfig(cfg *config.Config) probe.Config {
	peers := make([]probe.Peer, len(cfg.Peers))
	for i, p := range cfg.Peers {
		peers[i] = probe.Peer{
			Name: p.Name, URL: p.Probe, Host: p.Host, Expect: p.Expect, StatusURL: p.StatusURL,
			Interval: p.Interval.Duration, Timeout: p.Timeout.Duration, Rise: p.Rise, Fall: p.Fall,
			CAFile: p.CAFile, InsecureSkipVerify: p.InsecureSkipVerify,
		}
	}
	return probe.Config{Peers: peers}
}

// policy returns the publisher's policy (dns.mode, dns.all_down, the poll
// interval, dns.ttl as the unstable window, and -dry-run).
func policy(cfg *config.Config, dryRun bool) pool.Policy {
	return pool.Policy{Mode: cfg.DNS.Mode, AllDown: cfg.DNS.AllDown, Interval: cfg.HAProxy.PollInterval.Duration,
		Window: cfg.DNS.TTL.Duration, DryRun: dryRun}
}

// notifyConfig returns the notifier's settings ([notify]).
func notifyConfig(cfg *config.Config) notify.Config {
	return notify.Config{Exec: cfg.Notify.Exec, Webhook: cfg.Notify.Webhook, Timeout: cfg.Notify.Timeout.Duration}
}
