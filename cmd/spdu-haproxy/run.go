package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/control"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/metrics"
	"github.com/spdu/spdu-haproxy/internal/notify"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// options are the run command's flags that are not in the configuration.
type options struct {
	// dryRun serves the zone as healthy whatever the policy decides and
	// never lets an agent reply change HAProxy.
	dryRun bool
	// reloads, when not nil, delivers SIGHUP: reload the configuration.
	reloads <-chan os.Signal
	// load reads and checks the configuration file again on a reload.
	load func() (*config.Config, error)
	// notifyReady tells systemd (sd_notify) READY=1 once serving can begin,
	// and pings its watchdog when the unit asks for one.
	notifyReady bool
}

// group runs functions in goroutines and waits for them; the first error
// wins. Each function gets its own context so the daemon can stop its parts
// in order.
type group struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	firstErr error
	failed   chan struct{} // closed when any part returns an error
	once     sync.Once
}

func newGroup() *group { return &group{failed: make(chan struct{})} }

func (g *group) start(ctx context.Context, name string, fn func(context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(ctx); err != nil {
			g.mu.Lock()
			if g.firstErr == nil {
				g.firstErr = fmt.Errorf("%s: %w", name, err)
			}
			g.mu.Unlock()
			g.once.Do(func() { close(g.failed) })
		}
	}()
}

func (g *group) wait() error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.firstErr
}

// run builds the components from cfg, binds every listener before serving,
// and runs them until ctx is cancelled or one fails. Shutdown goes in order:
// the agent and the poller stop, the zone is answered with the withdraw
// rcode for dns.shutdown_grace so resolvers move on without timing out, then
// DNS, metrics and notifications stop. run returns after every component has
// stopped.
func run(ctx context.Context, logger zerolog.Logger, cfg *config.Config, opts options) error {
	logger = logger.With().Str("site", cfg.Site).Logger()
	var current atomic.Pointer[config.Config] // the configuration in force, for readers
	current.Store(cfg)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	dnsSrv, err := dnsserve.New(logger, dnsConfig(cfg))
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	notifier := notify.New(logger, notify.Config{Exec: cfg.Notify.Exec, Webhook: cfg.Notify.Webhook, Timeout: cfg.Notify.Timeout.Duration})

	rt := haproxy.NewRuntime(cfg.HAProxy.Socket)
	sc, cs := siteConfig(cfg), controlSettingsOf(cfg)
	if err := prepareSite(cs, &sc); err != nil {
		return err
	}
	var pp *poolParts // pool mode only
	poller := site.New(logger, rt.ShowStat, sc, func(st health.State) {
		if pp != nil {
			pp.publisher.Kick()
		} else if opts.dryRun {
			logger.Info().Bool("serving", st.Serving).Str("reason", st.Reason).Msg("dry-run: zone stays served")
		} else {
			dnsSrv.SetServing(st.Serving)
		}
		notifier.Notify(notify.Event{Site: cfg.Site, Kind: "site", State: stateName(st.Serving), Reason: st.Reason,
			Usable: st.Usable, Total: st.Total, Time: st.Since})
	})
	if opts.dryRun {
		dnsSrv.SetServing(true)
	}
	if cfg.DNS.Mode == "pool" {
		if pp, err = newPool(logger, cfg, poller, dnsSrv, opts.dryRun); err != nil {
			return err
		}
	}

	agentMetrics, err := metrics.NewAgent(reg)
	if err != nil {
		return err
	}
	agentReply := func(backend, server string) string {
		reply := poller.Snapshot().AgentReply(backend, server)
		if opts.dryRun && reply != haproxy.AgentNoChange {
			reply = "#dry-run: would reply " + reply
		}
		agentMetrics.Observe(reply)
		return reply
	}
	// The listening components are built by these, once at start and again
	// when a reload moves their listener.
	newAgent := func(c *config.Config) *haproxy.AgentServer {
		return haproxy.NewAgentServer(logger, agentReply, c.Agent.ReadTimeout.Duration)
	}
	newControl := func(c *config.Config) *control.Server {
		return newControlServer(logger, controlSettingsOf(c), c.Site, c.HAProxy.Socket, siteConfig(c), poller, dnsSrv.Serving)
	}
	newMetrics := func(addr string) (*metrics.Server, error) {
		return metrics.NewServer(logger, addr, reg, func() any { return statusOf(current.Load(), poller.Snapshot(), dnsSrv) })
	}
	agent := newAgent(cfg)
	collector := metrics.NewCollector(func() metrics.Site { return siteMetrics(poller.Snapshot()) }, func() metrics.DNS { return dnsMetrics(dnsSrv) })
	if pp != nil {
		collector.WithPeers(func() []metrics.Peer { return peerMetrics(pp.prober.Snapshot()) })
	}
	reg.MustRegister(collector)

	// Bind everything before serving anything, so a port conflict fails the
	// start-up as a whole; what was bound is released by running it with a
	// cancelled context.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	var release []func()
	fail := func(err error) error {
		for _, r := range release {
			r()
		}
		return err
	}
	if err := dnsSrv.Listen(cfg.DNS.Listen); err != nil {
		return fail(fmt.Errorf("dns: %w", err))
	}
	release = append(release, func() { dnsSrv.Run(done) }) //nolint:errcheck // releasing only
	if err := agent.Listen(cfg.Agent.Listen); err != nil {
		return fail(fmt.Errorf("agent: %w", err))
	}
	release = append(release, func() { agent.Run(done) }) //nolint:errcheck // releasing only
	ctl := newControl(cfg)
	if err := ctl.Listen(); err != nil {
		return fail(fmt.Errorf("control: %w", err))
	}
	release = append(release, func() { ctl.Run(done) }) //nolint:errcheck // releasing only
	var metricsSrv *metrics.Server
	if cfg.Metrics.Listen != "off" {
		metricsSrv, err = newMetrics(cfg.Metrics.Listen)
		if err != nil {
			return fail(err)
		}
	}

	logger.Info().Str("version", versionString()).Str("zone", cfg.DNS.Zone).Bool("dry_run", opts.dryRun).
		Strs("dns_listen", cfg.DNS.Listen).Str("agent_listen", cfg.Agent.Listen).Str("metrics_listen", cfg.Metrics.Listen).
		Str("socket", cfg.HAProxy.Socket).Str("backend", cfg.HAProxy.Backend).Msg("starting, withdrawn until healthy")

	front := newGroup() // stops first: agent, poller, watchdog
	back := newGroup()  // stops after the grace period: DNS, metrics, notifications
	frontCtx, stopFront := context.WithCancel(ctx)
	defer stopFront()
	dnsCtx, stopDNS := context.WithCancel(context.Background())
	defer stopDNS()
	back.start(dnsCtx, "dns", dnsSrv.Run)
	metricsSlot := &slot{g: back, parent: dnsCtx, name: "metrics"}
	if metricsSrv != nil {
		metricsSlot.replace(metricsSrv.Run)
	}
	back.start(dnsCtx, "notify", notifier.Run)
	agentSlot := &slot{g: front, parent: frontCtx, name: "agent"}
	agentSlot.replace(agent.Run)
	front.start(frontCtx, "poller", poller.Run)
	ctlSlot := &slot{g: front, parent: frontCtx, name: "control"}
	ctlSlot.replace(ctl.Run)
	if pp != nil {
		front.start(frontCtx, "probe", pp.prober.Run)
		front.start(frontCtx, "pool", pp.publisher.Run)
	}
	if opts.notifyReady {
		front.start(frontCtx, "systemd", func(ctx context.Context) error { return systemdNotify(ctx, logger, poller) })
	}

	rl := &reloader{log: logger, cur: cfg, poller: poller, notifier: notifier, dns: dnsSrv, pp: pp,
		published: func(c *config.Config) { current.Store(c) },
		agent:     agent, agentSlot: agentSlot, newAgent: newAgent,
		ctl: ctl, ctlSlot: ctlSlot, newControl: newControl,
		metricsSlot: metricsSlot, newMetrics: newMetrics}
wait:
	for {
		select {
		case <-ctx.Done():
			logger.Info().Dur("grace", rl.cur.DNS.ShutdownGrace.Duration).Msg("shutting down: zone withdrawn for the grace period")
			break wait
		case <-front.failed:
			break wait
		case <-back.failed:
			break wait
		case <-opts.reloads:
			next, err := opts.load()
			if err != nil {
				logger.Error().Err(err).Msg("reload failed: keeping the running configuration")
				continue
			}
			if err := rl.apply(ctx, next); err != nil {
				logger.Error().Err(err).Msg("reload failed: keeping the running configuration")
			}
		}
	}
	stopFront()
	errFront := front.wait()
	dnsSrv.SetServing(false)
	if pp != nil {
		dnsSrv.SetPool(dnsserve.PoolAnswer{Refuse: true})
	}
	if errFront == nil && ctx.Err() != nil {
		grace := time.NewTimer(rl.cur.DNS.ShutdownGrace.Duration)
		select {
		case <-grace.C:
		case <-back.failed:
			grace.Stop()
		}
	}
	stopDNS()
	errBack := back.wait()
	logger.Info().Msg("stopped")
	if errFront != nil {
		return errFront
	}
	return errBack
}

func stateName(serving bool) string {
	if serving {
		return "serving"
	}
	return "withdrawn"
}

func dnsConfig(cfg *config.Config) dnsserve.Config {
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
		Withdraw:         cfg.DNS.RcodeWithdraw(),
		Records:          recs,
		Identity:         cfg.Site,
		HideIdentity:     !*cfg.DNS.Identity,
		RRL:              dnsserve.RRL{Rate: rate, Slip: slip, Whitelist: whitelist, Loopback: cfg.DNS.RRL.Loopback},
		CookieSecretFile: cfg.DNS.CookieSecretFile,
		UDPSockets:       cfg.DNS.UDPSockets,
		UDPReadBuffer:    cfg.DNS.UDPReadBuffer,
		TCPMaxConns:      cfg.DNS.TCPMaxConnections,
		TCPIdleTimeout:   cfg.DNS.TCPIdleTimeout.Duration,
		TCPQueryTimeout:  cfg.DNS.TCPQueryTimeout.Duration,
	}
}

func controlSettingsOf(cfg *config.Config) controlSettings {
	return controlSettings{
		Socket: cfg.Control.Socket, StateFile: cfg.Control.StateFile, Frontend: cfg.HAProxy.Frontend,
		QuietPeriod: cfg.Control.QuietPeriod.Duration, Mode: cfg.Agent.Mode, DrainServers: cfg.Agent.DrainServers,
		Weights: health.WeightPolicy{HalfLife: cfg.Agent.HalfLife.Duration, MinWeight: *cfg.Agent.MinWeight,
			RecoveryRate: float64(cfg.Agent.RecoveryRate), Slack: cfg.Agent.LatencySlack.Duration},
	}
}

func siteConfig(cfg *config.Config) site.Config {
	return site.Config{
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
	}
}
