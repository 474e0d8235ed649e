package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// run builds the components from cfg, binds every listener before serving,
// and runs them until ctx is cancelled or one fails. It returns after every
// component has stopped.
func run(ctx context.Context, logger zerolog.Logger, cfg *config.Config) error {
	logger = logger.With().Str("site", cfg.Site).Logger()

	dnsSrv, err := dnsserve.New(logger, dnsConfig(cfg))
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	if err := dnsSrv.Listen(cfg.DNS.Listen); err != nil {
		return fmt.Errorf("dns: %w", err)
	}

	rt := haproxy.NewRuntime(cfg.HAProxy.Socket)
	poller := site.New(logger, rt.ShowStat, siteConfig(cfg), func(st health.State) {
		dnsSrv.SetServing(st.Serving)
	})

	agent := haproxy.NewAgentServer(logger, func(backend, server string) string {
		known := (backend == "" || backend == cfg.HAProxy.Backend) && poller.Snapshot().HasServer(server)
		return health.AgentReply(known)
	}, cfg.Agent.ReadTimeout.Duration)
	if err := agent.Listen(cfg.Agent.Listen); err != nil {
		return fmt.Errorf("agent: %w", err)
	}

	logger.Info().Str("version", versionString()).Str("zone", cfg.DNS.Zone).
		Strs("dns_listen", cfg.DNS.Listen).Str("agent_listen", cfg.Agent.Listen).
		Str("socket", cfg.HAProxy.Socket).Str("backend", cfg.HAProxy.Backend).Msg("starting, withdrawn until healthy")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	start := func(name string, runFn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runFn(ctx); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", name, err)
				}
				mu.Unlock()
			}
			cancel() // one component ending ends them all
		}()
	}
	start("dns", dnsSrv.Run)
	start("agent", agent.Run)
	start("poller", poller.Run)
	wg.Wait()
	logger.Info().Msg("stopped")
	return firstErr
}

func dnsConfig(cfg *config.Config) dnsserve.Config {
	recs := make(map[string]dnsserve.Records, len(cfg.DNS.Records))
	for owner, r := range cfg.DNS.Records {
		a, aaaa := r.Addrs()
		recs[strings.ToLower(owner)] = dnsserve.Records{A: a, AAAA: aaaa}
	}
	return dnsserve.Config{
		Zone:        cfg.DNS.Zone,
		TTL:         cfg.DNS.TTL.Duration,
		Nameservers: cfg.DNS.Nameservers,
		Hostmaster:  cfg.DNS.Hostmaster,
		Withdraw:    cfg.DNS.RcodeWithdraw(),
		Records:     recs,
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
