package main

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/metrics"
	"github.com/spdu/spdu-haproxy/internal/pool"
	"github.com/spdu/spdu-haproxy/internal/probe"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// poolParts are the pool-mode components: the peer prober and the publisher
// that turns site and peer state into the zone's answers.
type poolParts struct {
	prober    *probe.Prober
	publisher *pool.Publisher
	// set holds what a reload may change; the publisher's functions load it.
	set atomic.Pointer[poolSettings]
}

// poolSettings are the pool-mode settings that a reload changes in place:
// the site's own addresses (from [dns.records.*]), the peers' addresses by
// name, dns.max_answers, dns.ttl and dns.ttl_unstable.
type poolSettings struct {
	selfA, selfAAAA  []netip.Addr
	members          map[string]pool.Member // the peers, by name
	maxAnswers       int
	ttl, ttlUnstable time.Duration
}

func poolSettingsOf(cfg *config.Config, members map[string]pool.Member) *poolSettings {
	a, aaaa := ownAddrs(cfg)
	return &poolSettings{selfA: a, selfAAAA: aaaa, members: members, maxAnswers: cfg.DNS.MaxAnswers,
		ttl: cfg.DNS.TTL.Duration, ttlUnstable: cfg.DNS.TTLUnstable.Duration}
}

// buildPeers returns the probe targets and pool members of cfg's
// [[peers]]. Errors name the peer and key (an unreadable ca_file).
func buildPeers(cfg *config.Config) ([]probe.Peer, map[string]pool.Member, error) {
	peers := make([]probe.Peer, len(cfg.Peers))
	members := make(map[string]pool.Member, len(cfg.Peers))
	for i, p := range cfg.Peers {
		var roots *x509.CertPool
		if p.CAFile != "" {
			pem, err := os.ReadFile(p.CAFile)
			if err != nil {
				return nil, nil, fmt.Errorf("peers.%s.ca_file: %w", p.Name, err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("peers.%s.ca_file: %s holds no PEM certificate", p.Name, p.CAFile)
			}
		}
		peers[i] = probe.Peer{
			Name: p.Name, URL: p.Probe, Host: p.Host, Expect: p.Expect, StatusURL: p.StatusURL,
			Interval: p.Interval.Duration, Timeout: p.Timeout.Duration, Rise: p.Rise, Fall: p.Fall,
			RootCAs: roots, InsecureSkipVerify: p.InsecureSkipVerify,
		}
		members[p.Name] = pool.Member{Name: p.Name, A: parseAddrs(p.A), AAAA: parseAddrs(p.AAAA)}
	}
	return peers, members, nil
}

func allDownOf(cfg *config.Config) pool.AllDown {
	if cfg.DNS.AllDown == "all" {
		return pool.All
	}
	return pool.Refuse
}

// reconfigure applies a reloaded configuration whose peers buildPeers
// returned: the settings above, the peer list through the prober (see
// probe.Prober.SetPeers: a peer that stays keeps its state), and
// dns.all_down, the poll interval and the unstable window (dns.ttl) through
// the publisher, which then publishes again at once.
func (pp *poolParts) reconfigure(cfg *config.Config, peers []probe.Peer, members map[string]pool.Member) {
	pp.set.Store(poolSettingsOf(cfg, members))
	pp.prober.SetPeers(peers)
	pp.publisher.SetPolicy(allDownOf(cfg), cfg.HAProxy.PollInterval.Duration, cfg.DNS.TTL.Duration)
}

// newPool builds the pool-mode components for cfg (dns.mode = "pool"). The
// publisher re-evaluates every poll interval and at once on any change, and
// hands each outcome to dnsSrv.SetPool.
//
// With dryRun the site itself always counts as up.
func newPool(logger zerolog.Logger, cfg *config.Config, poller *site.Poller, dnsSrv *dnsserve.Server, dryRun bool) (*poolParts, error) {
	peers, members, err := buildPeers(cfg)
	if err != nil {
		return nil, err
	}
	pp := &poolParts{}
	pp.prober = probe.New(logger, peers, func(probe.Result) { pp.publisher.Kick() })

	pp.set.Store(poolSettingsOf(cfg, members))
	pp.publisher = pool.NewPublisher(pool.Pool, allDownOf(cfg), cfg.HAProxy.PollInterval.Duration, cfg.DNS.TTL.Duration,
		func() pool.Member {
			set := pp.set.Load()
			h := poller.Snapshot().Health
			c := 0.0
			if h.Total > 0 {
				c = float64(h.Usable) / float64(h.Total)
			}
			if dryRun {
				return pool.Member{Name: cfg.Site, A: set.selfA, AAAA: set.selfAAAA, Up: true, Capacity: max(c, 1e-3), Settled: true}
			}
			return pool.Member{Name: cfg.Site, A: set.selfA, AAAA: set.selfAAAA, Up: h.Serving, Capacity: c, Settled: h.Settled()}
		},
		func() []pool.Member {
			// Joined by name: right after a reload the prober may still
			// list the peers of the previous configuration.
			members := pp.set.Load().members
			rs := pp.prober.Snapshot()
			out := make([]pool.Member, 0, len(rs))
			for _, r := range rs {
				if m, ok := members[r.Name]; ok {
					m.Up, m.Capacity, m.Settled = r.Up, r.Capacity, r.Settled
					out = append(out, m)
				}
			}
			return out
		},
		func(pub pool.Published) {
			set := pp.set.Load()
			dnsSrv.SetPool(poolAnswer(pub, set.maxAnswers, set.ttl, set.ttlUnstable))
			logger.Info().Bool("refuse", pub.Answer.Refuse).Strs("sites", memberNames(pub.Answer)).
				Bool("unstable", pub.Answer.Unstable).Msg("pool answer changed")
		})
	return pp, nil
}

// poolAnswer turns a published decision into the DNS server's answer: one
// address set per ordering, capped at maxAnswers addresses per type.
func poolAnswer(pub pool.Published, maxAnswers int, ttl, ttlUnstable time.Duration) dnsserve.PoolAnswer {
	out := dnsserve.PoolAnswer{Refuse: pub.Answer.Refuse, TTL: ttl}
	if pub.Answer.Unstable {
		out.TTL = ttlUnstable
	}
	for _, order := range pub.Orders {
		var set dnsserve.AddressSet
		for _, i := range order {
			m := pub.Answer.Members[i]
			set.A = append(set.A, m.A...)
			set.AAAA = append(set.AAAA, m.AAAA...)
		}
		if maxAnswers > 0 {
			set.A = set.A[:min(len(set.A), maxAnswers)]
			set.AAAA = set.AAAA[:min(len(set.AAAA), maxAnswers)]
		}
		out.Variants = append(out.Variants, set)
	}
	return out
}

func peerMetrics(rs []probe.Result) []metrics.Peer {
	out := make([]metrics.Peer, len(rs))
	for i, r := range rs {
		out[i] = metrics.Peer{Name: r.Name, Up: r.Up, Latency: r.Latency, Capacity: r.Capacity}
	}
	return out
}

func memberNames(a pool.Answer) []string {
	names := make([]string, len(a.Members))
	for i, m := range a.Members {
		names[i] = m.Name
	}
	return names
}

// ownAddrs returns every address of the site's [dns.records.*] tables,
// without repeats: in pool mode every service name hands out the same sites.
func ownAddrs(cfg *config.Config) (a, aaaa []netip.Addr) {
	owners := make([]string, 0, len(cfg.DNS.Records))
	for o := range cfg.DNS.Records {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	for _, o := range owners {
		ra, raaaa := cfg.DNS.Records[o].Addrs()
		for _, x := range ra {
			if !slices.Contains(a, x) {
				a = append(a, x)
			}
		}
		for _, x := range raaaa {
			if !slices.Contains(aaaa, x) {
				aaaa = append(aaaa, x)
			}
		}
	}
	return a, aaaa
}

func parseAddrs(ss []string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s)) // validated by config
	}
	return out
}
