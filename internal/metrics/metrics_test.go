package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/status"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func TestCollector(t *testing.T) {
	c := NewCollector(func() Site {
		return Site{Serving: true, Since: t0.Add(-90 * time.Second), Usable: 4, Total: 5, Required: 3,
			Polls: 120, PollErrors: 2, LastPollDuration: 1500 * time.Microsecond, LastGood: t0.Add(-250 * time.Millisecond),
			Weights: map[string]int{"s1": 100, "s2": 40}, Utilization: 0.85, Shed: 0.25}
	}, func() DNS {
		return DNS{
			Queries:       map[QueryKey]uint64{{"udp", "A", "NOERROR"}: 7, {"tcp", "AAAA", "REFUSED"}: 1},
			RateLimited:   map[string]uint64{"slip": 3, "drop": 4},
			Shed:          9,
			DNSSECExpires: t0.Add(14 * 24 * time.Hour), DNSSECSigned: 21, DNSSECErrors: 1,
		}
	})
	c.now = func() time.Time { return t0 }
	c.WithPeers(func() []Peer { return []Peer{{Name: "beta", Up: true, Latency: 12 * time.Millisecond, Capacity: 0.4}} })
	want := `
# HELP spdu_site_serving 1 while the site answers for the pool zone, 0 while withdrawn.
# TYPE spdu_site_serving gauge
spdu_site_serving 1
# HELP spdu_site_time_in_state_seconds Seconds since the site last switched between serving and withdrawn.
# TYPE spdu_site_time_in_state_seconds gauge
spdu_site_time_in_state_seconds 90
# HELP spdu_haproxy_servers_usable Non-backup servers of the backend that would get new traffic, as of the last successful poll.
# TYPE spdu_haproxy_servers_usable gauge
spdu_haproxy_servers_usable 4
# HELP spdu_haproxy_servers Non-backup servers of the backend, as of the last successful poll.
# TYPE spdu_haproxy_servers gauge
spdu_haproxy_servers 5
# HELP spdu_haproxy_servers_required Usable servers needed to serve (health.min_up).
# TYPE spdu_haproxy_servers_required gauge
spdu_haproxy_servers_required 3
# HELP spdu_haproxy_polls_total Polls of the runtime API (show stat), successful or not.
# TYPE spdu_haproxy_polls_total counter
spdu_haproxy_polls_total 120
# HELP spdu_haproxy_poll_errors_total Polls of the runtime API that failed.
# TYPE spdu_haproxy_poll_errors_total counter
spdu_haproxy_poll_errors_total 2
# HELP spdu_haproxy_poll_duration_seconds Duration of the latest poll.
# TYPE spdu_haproxy_poll_duration_seconds gauge
spdu_haproxy_poll_duration_seconds 0.0015
# HELP spdu_haproxy_last_success_age_seconds Seconds since the last successful poll (-1 before the first).
# TYPE spdu_haproxy_last_success_age_seconds gauge
spdu_haproxy_last_success_age_seconds 0.25
# HELP spdu_site_drained 1 while an operator's site drain is in force.
# TYPE spdu_site_drained gauge
spdu_site_drained 0
# HELP spdu_agent_weight_percent Agent-check weight advertised per server, percent of the configured weight.
# TYPE spdu_agent_weight_percent gauge
spdu_agent_weight_percent{server="s1"} 100
spdu_agent_weight_percent{server="s2"} 40
# HELP spdu_site_utilization The site's load from HAProxy's counters at the last successful poll, 1 = at capacity (README, Load shedding).
# TYPE spdu_site_utilization gauge
spdu_site_utilization 0.85
# HELP spdu_shed_fraction Fraction of new clients the site sends to other sites, 0 to 1: the controller's or the operator's, whichever is higher.
# TYPE spdu_shed_fraction gauge
spdu_shed_fraction 0.25
# HELP spdu_dns_queries_total DNS queries answered, by transport, query type and rcode.
# TYPE spdu_dns_queries_total counter
spdu_dns_queries_total{rcode="NOERROR",transport="udp",type="A"} 7
spdu_dns_queries_total{rcode="REFUSED",transport="tcp",type="AAAA"} 1
# HELP spdu_dns_ratelimited_total DNS responses dropped or truncated by response rate limiting.
# TYPE spdu_dns_ratelimited_total counter
spdu_dns_ratelimited_total{action="drop"} 4
spdu_dns_ratelimited_total{action="slip"} 3
# HELP spdu_dns_shed_total DNS queries for the service names answered with the withdraw rcode by load shedding.
# TYPE spdu_dns_shed_total counter
spdu_dns_shed_total 9
# HELP spdu_dnssec_signature_expiry_timestamp_seconds When the earliest DNSSEC signature served expires, seconds since the epoch (0 while none is served).
# TYPE spdu_dnssec_signature_expiry_timestamp_seconds gauge
spdu_dnssec_signature_expiry_timestamp_seconds 1.7967312e+09
# HELP spdu_dnssec_signatures_total RRsets signed (re-signing included), one RRSIG per own key each.
# TYPE spdu_dnssec_signatures_total counter
spdu_dnssec_signatures_total 21
# HELP spdu_dnssec_sign_errors_total Signing passes that failed.
# TYPE spdu_dnssec_sign_errors_total counter
spdu_dnssec_sign_errors_total 1
# HELP spdu_dnssec_failing 1 while the zone cannot be signed and answers the withdraw rcode.
# TYPE spdu_dnssec_failing gauge
spdu_dnssec_failing 0
# HELP spdu_peer_up 1 while a peer site's probe passes (after rise and fall).
# TYPE spdu_peer_up gauge
spdu_peer_up{peer="beta"} 1
# HELP spdu_peer_probe_duration_seconds Duration of a peer site's latest probe.
# TYPE spdu_peer_probe_duration_seconds gauge
spdu_peer_probe_duration_seconds{peer="beta"} 0.012
# HELP spdu_peer_capacity_ratio A peer site's spare capacity from its status, 0 to 1.
# TYPE spdu_peer_capacity_ratio gauge
spdu_peer_capacity_ratio{peer="beta"} 0.4
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestReplyKind(t *testing.T) {
	for in, want := range map[string]string{
		"": "nochange", "100%": "weight", "7%": "weight", "drain": "drain", "ready": "ready",
		"#dry-run: would reply 50%": "dry_run", "# unknown server": "unknown", "up": "other", "x%": "other",
	} {
		if got := ReplyKind(in); got != want {
			t.Errorf("ReplyKind(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestServer scrapes a real listener.
func TestServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	agent, err := NewAgent(reg)
	if err != nil {
		t.Fatal(err)
	}
	agent.Observe("100%")
	agent.Observe("100%")
	agent.Observe("")
	doc := func() status.Document {
		return status.Document{Version: status.Version, Site: "alpha", Serving: true, Capacity: 0.8,
			Detail: &status.Detail{Zone: "pool.domain.tld.", LastError: "runtime api /run/haproxy/admin.sock: boom"}}
	}
	srv := NewServer(zerolog.Nop(), "127.0.0.1:0", reg, doc)
	if err := srv.Bind(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	get := func(path string) string {
		resp, err := http.Get("http://" + srv.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := get("/metrics")
	for _, want := range []string{`spdu_agent_replies_total{kind="weight"} 2`, `spdu_agent_replies_total{kind="nochange"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, m)
		}
	}
	// The response is reused for a second, but never gzip for a client
	// that did not ask for it (a scraper asking gzip first).
	for _, enc := range []string{"gzip", "identity", ""} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr().String()+"/metrics", nil)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		gz := resp.Header.Get("Content-Encoding") == "gzip"
		if gz != (enc == "gzip") || gz == strings.Contains(string(b), "spdu_agent_replies_total") {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, body starts %q", enc, resp.Header.Get("Content-Encoding"), b[:min(len(b), 16)])
		}
	}
	if s := get("/status"); !strings.Contains(s, `"site": "alpha"`) || !strings.Contains(s, "admin.sock") {
		t.Errorf("/status = %q, want the full document", s)
	}
	// The public form, for peers: no internals.
	if s := get("/status/public"); !strings.Contains(s, `"capacity": 0.8`) || strings.Contains(s, "admin.sock") || strings.Contains(s, "zone") {
		t.Errorf("/status/public = %q, want version, site, serving and capacity only", s)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return")
	}
}
