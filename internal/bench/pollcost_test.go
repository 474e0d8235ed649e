package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxytech/client-native/v5/runtime"
	"github.com/haproxytech/client-native/v5/runtime/options"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// pollSizes are the backend sizes BenchmarkPollCost measures.
var pollSizes = []int{1000, 10000}

// pollBackend is the backend the generated configuration names, as in
// examples/haproxy.cfg.
const pollBackend = "api"

// BenchmarkPollCost measures what one poll of a backend of 1,000 and 10,000
// servers costs, against a real HAProxy (/usr/sbin/haproxy) started with a
// generated configuration. For each size:
//
//   - spdu: what the daemon's poller does every poll_interval:
//     Runtime.ShowStat (runtime API `show stat api 6 -1` through
//     client-native's socket code, then ParseStat), the health Tracker and
//     the adaptive Weigher.
//   - parse: ParseStat alone on a dump read once, without the socket.
//   - client-native: client-native's own SingleRuntime.GetStats (`show stat`
//     decoded into models), for comparison.
//
// Besides ns/op (wall time, HAProxy's share included) each reports cpu-ms/op,
// this process's user+system CPU time per poll (getrusage, GC included), and
// haproxy-cpu-ms/op, HAProxy's CPU time per poll from /proc (10 ms
// resolution, spread over the loop). Run it with `scripts/bench.sh poll` or
// `go test ./internal/bench -run '^$' -bench PollCost`.
func BenchmarkPollCost(b *testing.B) {
	for _, n := range pollSizes {
		b.Run("servers="+strconv.Itoa(n), func(b *testing.B) {
			h := testenv.StartHAProxy(b, pollConfig(n, testenv.FreePort(b)))
			pid := haproxyPID(b, h)
			dump, err := h.Command("show stat " + pollBackend + " 6 -1")
			if err != nil {
				b.Fatalf("show stat: %v", err)
			}
			b.Run("spdu", func(b *testing.B) { benchSpduPoll(b, h.Socket, pid, n) })
			b.Run("parse", func(b *testing.B) { benchParse(b, []byte(dump), n) })
			b.Run("client-native", func(b *testing.B) { benchClientNative(b, h.Socket, pid, n) })
		})
	}
}

// benchSpduPoll runs the daemon's per-poll path: read, parse, evaluate.
func benchSpduPoll(b *testing.B, socket string, pid, n int) {
	rt := haproxy.NewRuntime(socket)
	now := time.Now()
	tracker := health.NewTracker(health.Policy{
		MinUp: health.Quorum{Percent: 60}, Rise: 2, Fall: 2, StaleAfter: 2 * time.Second,
	}, now)
	weigher := health.NewWeigher(health.WeightPolicy{})
	poll := func() haproxy.BackendStats {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := rt.ShowStat(ctx, pollBackend)
		if err != nil {
			b.Fatalf("ShowStat: %v", err)
		}
		at := time.Now()
		tracker.Observe(health.Observation{At: at, Usable: st.Usable, Total: st.Total})
		weigher.Update(at, st.Servers)
		return st
	}
	if st := poll(); st.Total != n || st.Usable != n {
		b.Fatalf("first poll: %d of %d servers usable, want %d of %d", st.Usable, st.Total, n, n)
	}
	b.ReportAllocs()
	cpu0, hcpu0 := selfCPU(b), procCPU(b, pid)
	for b.Loop() {
		poll()
	}
	b.ReportMetric(msPerOp(selfCPU(b)-cpu0, b.N), "cpu-ms/op")
	b.ReportMetric(msPerOp(procCPU(b, pid)-hcpu0, b.N), "haproxy-cpu-ms/op")
	if !tracker.State().Serving {
		b.Fatalf("site not serving after %d polls: %s", b.N+1, tracker.State().Reason)
	}
}

// benchParse runs ParseStat alone on one dump of n servers.
func benchParse(b *testing.B, dump []byte, n int) {
	if st, err := haproxy.ParseStat(dump, pollBackend); err != nil || st.Total != n {
		b.Fatalf("ParseStat: %d servers, %v; want %d", st.Total, err, n)
	}
	b.SetBytes(int64(len(dump)))
	b.ReportAllocs()
	cpu0 := selfCPU(b)
	for b.Loop() {
		if _, err := haproxy.ParseStat(dump, pollBackend); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(msPerOp(selfCPU(b)-cpu0, b.N), "cpu-ms/op")
}

// benchClientNative runs client-native's GetStats, which reads `show stat`
// for every proxy and decodes each row into a models.NativeStat.
func benchClientNative(b *testing.B, socket string, pid, n int) {
	rt := &runtime.SingleRuntime{}
	// With DoNotCheckRuntimeOnInit, Init only stores its arguments.
	if err := rt.Init(socket, 0, 0, options.RuntimeOptions{DoNotCheckRuntimeOnInit: true}); err != nil {
		b.Fatal(err)
	}
	stats := rt.GetStats()
	if stats.Error != "" {
		b.Fatalf("GetStats: %s", stats.Error)
	}
	servers := 0
	for _, s := range stats.Stats {
		if s.Type == "server" && s.BackendName == pollBackend {
			servers++
		}
	}
	if servers != n+1 { // n servers and the backup
		b.Fatalf("GetStats: %d servers of %s, want %d", servers, pollBackend, n+1)
	}
	b.ReportAllocs()
	cpu0, hcpu0 := selfCPU(b), procCPU(b, pid)
	for b.Loop() {
		if s := rt.GetStats(); s.Error != "" {
			b.Fatalf("GetStats: %s", s.Error)
		}
	}
	b.ReportMetric(msPerOp(selfCPU(b)-cpu0, b.N), "cpu-ms/op")
	b.ReportMetric(msPerOp(procCPU(b, pid)-hcpu0, b.N), "haproxy-cpu-ms/op")
}

// pollConfig is a HAProxy configuration whose backend "api" has n servers
// shaped like the ones of examples/haproxy.cfg (HTTP checks, weight 100)
// plus a backup server. Every server points at a local frontend that answers
// 200, and checks run once an hour, so the servers are UP with almost no
// check traffic; HAProxy spreads the first checks over that hour.
func pollConfig(n, port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    stats socket {{SOCKET}} mode 600 level admin
    stats timeout 30s

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 2s

frontend target
    bind 127.0.0.1:%d
    http-request return status 200 content-type text/plain string ok

backend %s
    balance roundrobin
    option httpchk GET /status
    http-check expect status 200
    default-server check inter 1h fall 2 rise 2 weight 100
`, port, pollBackend)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "    server s%d 127.0.0.1:%d\n", i, port)
	}
	fmt.Fprintf(&b, "    server peer 127.0.0.1:%d backup\n", port)
	return b.String()
}

// haproxyPID reads HAProxy's pid from `show info`.
func haproxyPID(b *testing.B, h *testenv.HAProxy) int {
	b.Helper()
	info, err := h.Command("show info")
	if err != nil {
		b.Fatalf("show info: %v", err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "Pid: "); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				b.Fatalf("show info: bad Pid line %q", line)
			}
			return pid
		}
	}
	b.Fatalf("show info: no Pid line in %q", info)
	return 0
}
