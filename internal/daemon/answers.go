package daemon

import (
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/pool"
	"github.com/spdu/spdu-haproxy/internal/probe"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// The one answer path: the poller's snapshot (health, drain) and the peer
// probes' results become pool.Members; the publisher decides (pool.Decide,
// stability, dry-run) and hands each outcome to render, whose
// dnsserve.Answers is the DNS server's only input of serving state.

// answerBook is what turns the publisher's members and decisions into DNS
// answers: the addresses of every site and the TTLs. A reload replaces it
// whole.
type answerBook struct {
	mode       config.DNSMode
	site       string
	selfA      []netip.Addr           // every address of [dns.records.*], without repeats
	selfAAAA   []netip.Addr           //
	peers      map[string]pool.Member // the peers' addresses, by name
	maxAnswers int                    // dns.max_answers; 0: all
	unstable   time.Duration          // dns.ttl_unstable
}

// newAnswerBook reads the answer settings of cfg.
func newAnswerBook(cfg *config.Config) *answerBook {
	b := &answerBook{mode: cfg.DNS.Mode, site: cfg.Site, peers: make(map[string]pool.Member, len(cfg.Peers)),
		maxAnswers: cfg.DNS.MaxAnswers, unstable: cfg.DNS.TTLUnstable.Duration}
	b.selfA, b.selfAAAA = ownAddrs(cfg)
	for _, p := range cfg.Peers {
		b.peers[p.Name] = pool.Member{Name: p.Name, A: parseAddrs(p.A), AAAA: parseAddrs(p.AAAA)}
	}
	return b
}

// self is this site as the policy sees it: up while the health policy
// serves (withdrawn while drained), with its spare capacity.
func (b *answerBook) self(snap *site.Snapshot) pool.Member {
	h := snap.Health
	return pool.Member{Name: b.site, A: b.selfA, AAAA: b.selfAAAA, Up: h.Serving,
		Capacity: snap.SpareCapacity(), Settled: h.Settled(), Shed: snap.Load.Shed}
}

// members joins the probe results with the peers' addresses by name: right
// after a reload the prober may still list the peers of the previous
// configuration, which are left out.
func (b *answerBook) members(rs []probe.Result) []pool.Member {
	out := make([]pool.Member, 0, len(rs))
	for _, r := range rs {
		if m, ok := b.peers[r.Name]; ok {
			m.Up, m.Capacity, m.Settled = r.Up, r.Capacity, r.Settled
			out = append(out, m)
		}
	}
	return out
}

// render turns a published decision into the DNS server's answers. Self
// mode hands out each service name's own records, shedding its fraction
// of the queries for them. Pool mode hands out one
// address set per ordering, capped at max_answers addresses per type, with
// the unstable TTL while the answer is unstable. Otherwise the TTL is left
// to the zone (dns.ttl), so a reload's new TTL is served at once.
func (b *answerBook) render(pub pool.Published) dnsserve.Answers {
	if pub.Answer.Refuse {
		return dnsserve.Answers{Refuse: true}
	}
	if b.mode == config.ModeSelf {
		return dnsserve.Answers{Shed: pub.Answer.Shed}
	}
	var out dnsserve.Answers // TTL 0: the zone's dns.ttl, which a reload changes at once
	if pub.Answer.Unstable {
		out.TTL = b.unstable
	}
	for _, order := range pub.Orders {
		var set dnsserve.AddressSet
		for _, i := range order {
			m := pub.Answer.Members[i]
			set.A = append(set.A, m.A...)
			set.AAAA = append(set.AAAA, m.AAAA...)
		}
		if b.maxAnswers > 0 {
			set.A = set.A[:min(len(set.A), b.maxAnswers)]
			set.AAAA = set.AAAA[:min(len(set.AAAA), b.maxAnswers)]
		}
		out.Sets = append(out.Sets, set)
	}
	return out
}

// memberNames lists the sites an answer hands out, for logs.
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
