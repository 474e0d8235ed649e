package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// slowDelay is what the slow server (s5) adds to every response.
const slowDelay = 200 * time.Millisecond

// loadStats are the client-side results of one load run.
type loadStats struct {
	lat    []time.Duration // sorted
	by     map[string]int  // responses by server name
	errors int
}

// quantile returns the q-quantile (0 < q <= 1) of the latencies.
func (l loadStats) quantile(q float64) time.Duration {
	if len(l.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(l.lat))+0.999999) - 1
	return l.lat[max(0, min(i, len(l.lat)-1))]
}

// share returns the fraction of responses that came from server.
func (l loadStats) share(server string) float64 {
	return float64(l.by[server]) / float64(max(1, len(l.lat)))
}

func (l loadStats) String() string {
	return fmt.Sprintf("%d requests, %d errors, p50 %s, p99 %s, s5 share %.1f%%",
		len(l.lat), l.errors, l.quantile(0.5).Round(100*time.Microsecond), l.quantile(0.99).Round(100*time.Microsecond), 100*l.share("s5"))
}

// runLoad sends GET url at rate requests per second for dur, open loop (a
// slow response never delays the next request), and measures each.
func runLoad(url string, rate int, dur time.Duration) loadStats {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	st := loadStats{by: map[string]int{}}
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.NewTimer(dur)
	defer end.Stop()
	for done := false; !done; {
		select {
		case <-end.C:
			done = true
		case <-tick.C:
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				resp, err := client.Get(url)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				took := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				if err != nil || resp.StatusCode != http.StatusOK {
					st.errors++
					return
				}
				st.lat = append(st.lat, took)
				st.by[strings.TrimSpace(strings.TrimPrefix(string(body), "hello from "))]++
			}()
		}
	}
	wg.Wait()
	slices.Sort(st.lat)
	return st
}

// agentSetup is one way to run the site for a latency measurement.
type agentSetup struct {
	name      string
	agent     bool // agent-check on the servers, and our daemon answering
	mode      string
	minWeight int
	slack     time.Duration // agent.latency_slack; 0 for the default 10ms
}

// measureSite starts five real backends (s5 adds slowDelay), a real
// HAProxy balancing them with roundrobin and, with setup.agent, the daemon
// as their agent. In adaptive mode it first sends traffic until HAProxy
// applies a weight of at most min_weight to s5 (returning how long that
// took), then it measures rate requests per second for dur.
func measureSite(tb testing.TB, setup agentSetup, rate int, dur time.Duration) (loadStats, time.Duration) {
	tb.Helper()
	c := testenv.DaemonConfig{Agent: fmt.Sprintf("mode = %q\nhalf_life = \"2s\"", setup.mode)}
	if setup.minWeight > 0 {
		c.Agent += fmt.Sprintf("\nmin_weight = %d", setup.minWeight)
	}
	if setup.slack > 0 {
		c.Agent += fmt.Sprintf("\nlatency_slack = %q", setup.slack.String())
	}
	s := testenv.StartSite(tb, testenv.SiteOpts{Delays: []time.Duration{0, 0, 0, 0, slowDelay}, NoAgent: !setup.agent, Daemon: c})
	if setup.agent {
		startDaemon(tb, s.Config.Parse(tb))
	}
	url := "http://" + s.HTTPAddr + "/"
	testenv.Eventually(tb, 5*time.Second, "all servers up", func() bool {
		n := 0
		for name, row := range s.HAProxy.ShowStat(tb, "api") {
			if strings.HasPrefix(name, "s") && row["status"] == "UP" {
				n++
			}
		}
		return n == 5
	})
	var converge time.Duration
	if setup.mode == "adaptive" {
		tr := testenv.StartTraffic(url, rate)
		last := ""
		converge = testenv.Eventually(tb, 15*time.Second, "HAProxy applies a low weight to s5", func() bool {
			row := s.HAProxy.ShowStat(tb, "api")["s5"]
			if row["weight"] != last {
				last = row["weight"]
				tb.Logf("s5: weight %s, rtime %s", row["weight"], row["rtime"])
			}
			w, err := strconv.Atoi(last)
			// At or near min_weight: under -race and a loaded CI machine
			// the fast servers' median is a few ms, which lifts the slow
			// one's target a little above the floor; 4% of five servers
			// is still under 1% of requests, outside the p99.
			return err == nil && w <= max(setup.minWeight, 4)
		})
		tr.Stop()
	}
	return runLoad(url, rate, dur), converge
}

// TestAdaptiveWeightsLowerP99 measures client latency through a real
// HAProxy with one slow server of five, with the agent in static mode and
// in adaptive mode: adaptive must steer the slow server's share well below
// its roundrobin 20% and lower the p99.
//
// At the defaults (min_weight 1%, max_lowered 20%, latency_slack 10ms) the
// slow server's target is (1+10)/(200+10) = 5%, and with four others at
// 100% it gets w/(400+w) of the requests: 1.2% at 5%, 0.25% at the 1%
// floor; keeping a slow server out of the p99 needs under 1%, a weight
// below about 4%.
func TestAdaptiveWeightsLowerP99(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const rate, dur = 300, 6 * time.Second
	static, _ := measureSite(t, agentSetup{name: "static", agent: true, mode: "static"}, rate, dur)
	adaptive, converge := measureSite(t, agentSetup{name: "adaptive", agent: true, mode: "adaptive"}, rate, dur)
	t.Logf("static:   %v", static)
	t.Logf("adaptive: %v (s5 weight fell to min_weight %s after traffic started)", adaptive, converge)
	for name, l := range map[string]loadStats{"static": static, "adaptive": adaptive} {
		if len(l.lat) < rate*int(dur/time.Second)*9/10 || l.errors > 0 {
			t.Errorf("%s: %d responses and %d errors, want about %d and none", name, len(l.lat), l.errors, rate*int(dur/time.Second))
		}
	}
	if s := static.share("s5"); s < 0.15 {
		t.Errorf("static: slow server's share %.1f%%, want about 20%%", 100*s)
	}
	if s := adaptive.share("s5"); s > 0.05 {
		t.Errorf("adaptive: slow server's share %.1f%%, want well below 20%%", 100*s)
	}
	if a, s := adaptive.quantile(0.99), static.quantile(0.99); a >= s/2 {
		t.Errorf("p99 adaptive %s, static %s: want adaptive below half of static", a, s)
	}
}

// BenchmarkAgentLatency reports client latency (p50, p95, p99, p99.9) and the slow
// server's share with roundrobin and no agent, the agent in static mode, and
// adaptive mode with the defaults (min_weight 1%, max_lowered 20%,
// latency_slack 10ms) and with min_weight 10% (the default before). Each setup runs
// one load of 300 requests per second for 15 s; run it with
//
//	go test -run '^$' -bench AgentLatency -benchtime 1x ./internal/daemon
func BenchmarkAgentLatency(b *testing.B) {
	for _, setup := range []agentSetup{
		{name: "roundrobin-no-agent"},
		{name: "static", agent: true, mode: "static"},
		{name: "adaptive-defaults", agent: true, mode: "adaptive"},
		{name: "adaptive-min10-old-default", agent: true, mode: "adaptive", minWeight: 10},
	} {
		b.Run(setup.name, func(b *testing.B) {
			for range b.N {
				l, _ := measureSite(b, setup, 300, 15*time.Second)
				b.ReportMetric(float64(l.quantile(0.5).Microseconds())/1000, "p50_ms")
				b.ReportMetric(float64(l.quantile(0.95).Microseconds())/1000, "p95_ms")
				b.ReportMetric(float64(l.quantile(0.99).Microseconds())/1000, "p99_ms")
				b.ReportMetric(float64(l.quantile(0.999).Microseconds())/1000, "p999_ms")
				b.ReportMetric(100*l.share("s5"), "slow_share_%")
				b.ReportMetric(float64(l.errors), "errors")
			}
		})
	}
}
