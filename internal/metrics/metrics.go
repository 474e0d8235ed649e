// Package metrics owns what spdu-haproxy exports for monitoring: the
// Prometheus metrics (names spdu_<subsystem>_<name>, with _total and _seconds
// as the Prometheus naming conventions say) and the HTTP listener that serves
// them at /metrics beside the status document at /status and its public
// form at /status/public (internal/status). Site metrics are read
// from the latest published state at scrape time, so the poll and DNS paths
// pay nothing for them. The registry is passed in; nothing here is global.
package metrics

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Site is what the site metrics are read from at each scrape: a copy of the
// poller's latest state.
type Site struct {
	// Serving is true while the zone is answered.
	Serving bool
	// Since is when Serving last changed.
	Since time.Time
	// Usable, Total and Required count servers of the last successful poll.
	Usable, Total, Required int
	// Polls and PollErrors count polls done and failed since start.
	Polls, PollErrors uint64
	// LastPollDuration is how long the latest poll took.
	LastPollDuration time.Duration
	// LastGood is when the last successful poll finished (zero: never).
	LastGood time.Time
	// Drained is true while an operator's site drain is in force.
	Drained bool
	// Weights is the agent weight advertised per server, in percent of the
	// configured weight.
	Weights map[string]int
	// Utilization is the site's load from the last successful poll, 1 =
	// at capacity (shed.Utilization).
	Utilization float64
	// Shed is the fraction of new clients the site sends elsewhere, 0 to
	// 1: the controller's or the operator's floor, whichever is higher.
	Shed float64
}

// DNS is what the DNS metrics are read from at each scrape.
type DNS struct {
	// Queries counts answered queries by transport ("udp", "tcp"), query
	// type ("A", "AAAA", ..., "other") and rcode ("NOERROR", "NXDOMAIN",
	// "REFUSED", ...).
	Queries map[QueryKey]uint64
	// RateLimited counts responses dropped or truncated by response rate
	// limiting, by action ("drop", "slip").
	RateLimited map[string]uint64
	// Shed counts queries answered with the withdraw rcode by load
	// shedding (self mode).
	Shed uint64
	// DNSSECExpires is when the earliest signature served expires (zero:
	// none served); DNSSECSigned counts RRsets signed, DNSSECErrors the
	// signing passes that failed; DNSSECFailing is true while the zone
	// cannot be signed and answers the withdraw rcode.
	DNSSECExpires              time.Time
	DNSSECSigned, DNSSECErrors uint64
	DNSSECFailing              bool
}

// Peer is one peer site's probe state, read at each scrape (pool mode).
type Peer struct {
	// Name is the peer's site name (label "peer").
	Name string
	// Up is the probe's rise/fall decision.
	Up bool
	// Latency is the duration of the latest probe.
	Latency time.Duration
	// Capacity is the peer's spare capacity from 0 to 1.
	Capacity float64
}

// QueryKey labels one DNS query counter.
type QueryKey struct{ Transport, Type, Rcode string }

// Collector is a prometheus.Collector that reads Site and DNS values from
// functions at scrape time. Either function may be nil.
type Collector struct {
	site  func() Site
	dns   func() DNS
	peers func() []Peer
	now   func() time.Time

	serving, timeInState, usable, total, required *prometheus.Desc
	polls, pollErrors, pollDuration, staleness    *prometheus.Desc
	drained, weight, utilization, shedFraction    *prometheus.Desc
	queries, rateLimited, dnsShed                 *prometheus.Desc
	sigExpiry, signed, signErrors, signFailing    *prometheus.Desc
	peerUp, peerLatency, peerCapacity             *prometheus.Desc
}

// NewCollector returns a Collector; register it with Register. Any source
// may be nil; peers is set with WithPeers.
func NewCollector(site func() Site, dns func() DNS) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Collector{
		site: site, dns: dns, now: time.Now,
		serving:      d("spdu_site_serving", "1 while the site answers for the pool zone, 0 while withdrawn."),
		timeInState:  d("spdu_site_time_in_state_seconds", "Seconds since the site last switched between serving and withdrawn."),
		usable:       d("spdu_haproxy_servers_usable", "Non-backup servers of the backend that would get new traffic, as of the last successful poll."),
		total:        d("spdu_haproxy_servers", "Non-backup servers of the backend, as of the last successful poll."),
		required:     d("spdu_haproxy_servers_required", "Usable servers needed to serve (health.min_up)."),
		polls:        d("spdu_haproxy_polls_total", "Polls of the runtime API (show stat), successful or not."),
		pollErrors:   d("spdu_haproxy_poll_errors_total", "Polls of the runtime API that failed."),
		pollDuration: d("spdu_haproxy_poll_duration_seconds", "Duration of the latest poll."),
		staleness:    d("spdu_haproxy_last_success_age_seconds", "Seconds since the last successful poll (-1 before the first)."),
		drained:      d("spdu_site_drained", "1 while an operator's site drain is in force."),
		weight:       d("spdu_agent_weight_percent", "Agent-check weight advertised per server, percent of the configured weight.", "server"),
		utilization:  d("spdu_site_utilization", "The site's load from HAProxy's counters at the last successful poll, 1 = at capacity (README, Load shedding)."),
		shedFraction: d("spdu_shed_fraction", "Fraction of new clients the site sends to other sites, 0 to 1: the controller's or the operator's, whichever is higher."),
		dnsShed:      d("spdu_dns_shed_total", "DNS queries for the service names answered with the withdraw rcode by load shedding."),
		sigExpiry:    d("spdu_dnssec_signature_expiry_timestamp_seconds", "When the earliest DNSSEC signature served expires, seconds since the epoch (0 while none is served)."),
		signed:       d("spdu_dnssec_signatures_total", "RRsets signed (re-signing included), one RRSIG per own key each."),
		signErrors:   d("spdu_dnssec_sign_errors_total", "Signing passes that failed."),
		signFailing:  d("spdu_dnssec_failing", "1 while the zone cannot be signed and answers the withdraw rcode."),
		queries:      d("spdu_dns_queries_total", "DNS queries answered, by transport, query type and rcode.", "transport", "type", "rcode"),
		rateLimited:  d("spdu_dns_ratelimited_total", "DNS responses dropped or truncated by response rate limiting.", "action"),
		peerUp:       d("spdu_peer_up", "1 while a peer site's probe passes (after rise and fall).", "peer"),
		peerLatency:  d("spdu_peer_probe_duration_seconds", "Duration of a peer site's latest probe.", "peer"),
		peerCapacity: d("spdu_peer_capacity_ratio", "A peer site's spare capacity from its status, 0 to 1.", "peer"),
	}
}

// WithPeers adds the peer probe metrics, read from peers at each scrape.
func (c *Collector) WithPeers(peers func() []Peer) *Collector {
	c.peers = peers
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.serving, c.timeInState, c.usable, c.total, c.required, c.polls,
		c.pollErrors, c.pollDuration, c.staleness, c.drained, c.weight, c.utilization, c.shedFraction,
		c.queries, c.rateLimited, c.dnsShed, c.sigExpiry, c.signed, c.signErrors, c.signFailing,
		c.peerUp, c.peerLatency, c.peerCapacity} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if c.site != nil {
		s := c.site()
		now := c.now()
		gauge(c.serving, b2f(s.Serving))
		gauge(c.timeInState, now.Sub(s.Since).Seconds())
		gauge(c.usable, float64(s.Usable))
		gauge(c.total, float64(s.Total))
		gauge(c.required, float64(s.Required))
		counter(c.polls, s.Polls)
		counter(c.pollErrors, s.PollErrors)
		gauge(c.pollDuration, s.LastPollDuration.Seconds())
		age := -1.0
		if !s.LastGood.IsZero() {
			age = now.Sub(s.LastGood).Seconds()
		}
		gauge(c.staleness, age)
		gauge(c.drained, b2f(s.Drained))
		gauge(c.utilization, s.Utilization)
		gauge(c.shedFraction, s.Shed)
		for server, w := range s.Weights {
			gauge(c.weight, float64(w), server)
		}
	}
	if c.dns != nil {
		d := c.dns()
		for k, v := range d.Queries {
			counter(c.queries, v, k.Transport, k.Type, k.Rcode)
		}
		for action, v := range d.RateLimited {
			counter(c.rateLimited, v, action)
		}
		counter(c.dnsShed, d.Shed)
		expiry := 0.0
		if !d.DNSSECExpires.IsZero() {
			expiry = float64(d.DNSSECExpires.Unix())
		}
		gauge(c.sigExpiry, expiry)
		counter(c.signed, d.DNSSECSigned)
		counter(c.signErrors, d.DNSSECErrors)
		gauge(c.signFailing, b2f(d.DNSSECFailing))
	}
	if c.peers != nil {
		for _, p := range c.peers() {
			gauge(c.peerUp, b2f(p.Up), p.Name)
			gauge(c.peerLatency, p.Latency.Seconds(), p.Name)
			gauge(c.peerCapacity, p.Capacity, p.Name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Agent counts agent-check replies by kind; it is safe for concurrent use.
type Agent struct {
	replies *prometheus.CounterVec
}

// NewAgent registers spdu_agent_replies_total{kind} on reg. Kinds: "weight"
// (a percentage), "nochange" (an empty reply: a bad request, or a drain
// already applied), "unknown" (a comment for a server the agent does not
// know), "drain", "ready", "dry_run".
func NewAgent(reg prometheus.Registerer) (*Agent, error) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spdu_agent_replies_total",
		Help: "Agent-check replies sent to HAProxy, by kind.",
	}, []string{"kind"})
	if err := reg.Register(v); err != nil {
		return nil, err
	}
	return &Agent{replies: v}, nil
}

// Observe counts one reply line (without its newline).
func (a *Agent) Observe(reply string) { a.replies.WithLabelValues(ReplyKind(reply)).Inc() }

// ReplyKind classifies an agent reply line for spdu_agent_replies_total.
func ReplyKind(reply string) string {
	switch {
	case reply == "":
		return "nochange"
	case strings.HasPrefix(reply, "#dry-run"):
		return "dry_run"
	case reply[0] == '#':
		return "unknown"
	case reply[len(reply)-1] == '%':
		if _, err := strconv.Atoi(reply[:len(reply)-1]); err == nil {
			return "weight"
		}
	case reply == "drain" || reply == "ready":
		return reply
	}
	return "other"
}
