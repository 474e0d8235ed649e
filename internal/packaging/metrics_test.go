package packaging

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// exported maps each metric name on /metrics to its label names.
type exported map[string]map[string]bool

// scrape reads /metrics (Prometheus text format) and returns the metric
// names with their label names.
func scrape(url string) (exported, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := exported{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, hasLabels := strings.Cut(line, "{")
		if !hasLabels {
			name, _, _ = strings.Cut(line, " ")
		}
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		if hasLabels {
			labels, _, _ := strings.Cut(rest, "}")
			for _, m := range matcherLabel.FindAllStringSubmatch(quotedStrings.ReplaceAllString(labels, `""`), -1) {
				out[name][m[1]] = true
			}
		}
	}
	return out, sc.Err()
}

// monitoringSite starts what makes every metric of the daemon appear:
// HAProxy with three backends whose agent-checks ask the daemon, and the
// daemon with adaptive agent weights (static mode exports none), in pool
// mode with one peer (probed over HTTP), response rate
// limiting at one response per second that applies to loopback, and
// /metrics on a free port. It returns the /metrics URL and the DNS
// address.
func monitoringSite(t *testing.T) (metricsURL, dnsAddr string) {
	t.Helper()
	backends := testenv.StartBackends(t, 3)
	agentPort, dnsPort, metricsPort, httpPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	var cfg strings.Builder
	cfg.WriteString(testenv.HAProxyPreamble(300 * time.Millisecond))
	fmt.Fprintf(&cfg, "frontend www\n    bind 127.0.0.1:%d\n    default_backend api\nbackend api\n    balance roundrobin\n    option httpchk GET /status\n", httpPort)
	cfg.WriteString(testenv.ServerLines(backends, agentPort, 200*time.Millisecond))
	h := testenv.StartHAProxy(t, cfg.String())

	dir, err := os.MkdirTemp("", "spdu-metrics-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	text := fmt.Sprintf(`site = "alpha"
[haproxy]
socket = %q
backend = "api"
poll_interval = "100ms"
stale_after = "1s"
[health]
min_up = 1
rise = 1
fall = 1
[dns]
listen = ["127.0.0.1:%d"]
zone = "pool.domain.tld."
nameservers = ["alpha.domain.tld."]
mode = "pool"
shutdown_grace = "0s"
[dns.rrl]
rate = 1
loopback = true
[dns.records.api]
a = ["127.0.0.1"]
[agent]
listen = "127.0.0.1:%d"
mode = "adaptive"
[metrics]
listen = "127.0.0.1:%d"
[control]
socket = "%s/control.sock"
state_file = "%s/state.json"
[[peers]]
name = "beta"
a = ["127.0.0.2"]
probe = "http://%s/status"
interval = "200ms"
timeout = "150ms"
rise = 1
fall = 1
`, h.Socket, dnsPort, agentPort, metricsPort, dir, dir, backends[0].Addr)
	path := filepath.Join(dir, "alpha.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.StartBinary(t, "run", "-config", path)
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort), fmt.Sprintf("127.0.0.1:%d", dnsPort)
}

// queryBurst sends n DNS queries for the service name at once without
// waiting for answers: beyond the first, rate limiting drops or truncates
// them. Write errors are ignored: until the daemon listens, the port
// refuses them.
func queryBurst(t *testing.T, addr string, n int) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	for i := range n {
		m.Id = uint16(i + 1)
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		c.Write(wire) //nolint:errcheck // see above
	}
}

// TestMonitoringMetricsExported starts the real daemon next to a real
// HAProxy, makes every metric appear (agent-checks, DNS queries, rate
// limiting, a peer) and checks that every metric the dashboard and the
// alerting rules use is on /metrics, with the labels they use: a renamed
// metric or label fails here, not on an operator's screen.
func TestMonitoringMetricsExported(t *testing.T) {
	used := map[string][]string{} // metric -> where it is used
	labels := map[string][]labelUse{}
	add := func(where, expr string) {
		for _, n := range metricNames(expr) {
			used[n] = append(used[n], where)
		}
		labels[where] = append(labels[where], labelsUsed(expr)...)
	}
	for where, expr := range readDashboard(t).exprs(t) {
		add("dashboard "+where, expr)
	}
	for name, expr := range ruleExprs(t) {
		add("rule "+name, expr)
	}
	for _, want := range []string{"spdu_site_serving", "spdu_dns_queries_total", "spdu_peer_up", "spdu_agent_replies_total"} {
		if used[want] == nil {
			t.Errorf("%s is used neither by the dashboard nor by the rules: is the extraction broken?", want)
		}
	}

	metricsURL, dnsAddr := monitoringSite(t)
	var got exported
	var missing []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		queryBurst(t, dnsAddr, 20)
		var err error
		got, err = scrape(metricsURL)
		missing = missing[:0]
		for name := range used {
			if _, ok := got[name]; !ok {
				missing = append(missing, name)
			}
		}
		if err == nil && len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			t.Fatalf("not on /metrics after 20s (last error %v):\n%s", err, describe(missing, used))
		}
		select {
		case <-time.After(100 * time.Millisecond): // let agent-checks, polls and probes happen
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
	t.Logf("%d metrics used by the dashboard and the rules, all exported", len(used))

	for where, uses := range labels {
		for _, u := range uses {
			if slices.Contains(targetLabels, u.Label) {
				continue
			}
			found := false
			for _, m := range u.Metrics {
				found = found || got[m][u.Label]
			}
			if !found {
				t.Errorf("%s: label %q is not a label of %v on /metrics (nor a target label %v)", where, u.Label, u.Metrics, targetLabels)
			}
		}
	}
}

func describe(missing []string, used map[string][]string) string {
	var b strings.Builder
	for _, m := range missing {
		w := used[m]
		sort.Strings(w)
		fmt.Fprintf(&b, "  %s, used by %s\n", m, strings.Join(w, ", "))
	}
	return b.String()
}
