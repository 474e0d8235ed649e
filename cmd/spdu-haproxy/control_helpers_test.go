package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/site"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// slowBackend is an HTTP backend on loopback that answers every path but
// /status with "hello from NAME" after delay, like cmd/demo-backend -delay.
type slowBackend struct {
	Name, Addr string
}

// startSlowBackends starts one backend per delay, named s1..sN.
func startSlowBackends(t testing.TB, delays ...time.Duration) []slowBackend {
	t.Helper()
	var out []slowBackend
	for i, delay := range delays {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("s%d", i+1)
		mux := http.NewServeMux()
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if delay > 0 {
				timer := time.NewTimer(delay) // plays a slow server; not synchronisation
				defer timer.Stop()
				select {
				case <-timer.C:
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, "hello from %s\n", name)
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(l) //nolint:errcheck // ErrServerClosed at cleanup
		t.Cleanup(func() { srv.Close() })
		out = append(out, slowBackend{Name: name, Addr: l.Addr().String()})
	}
	return out
}

// siteHAProxy is the HAProxy configuration of the control and adaptive
// tests: frontend www on fePort, backend api with the backends (weight 100,
// checks and agent checks every 100 ms) and, if backup is not "", a backup
// server at that address. withAgent false leaves the agent check out.
func siteHAProxy(backends []slowBackend, fePort, agentPort int, backup string, withAgent bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    stats socket {{SOCKET}} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout check 500ms
frontend www
    bind 127.0.0.1:%d
    default_backend api
backend api
    balance roundrobin
    option httpchk GET /status
`, fePort)
	for _, be := range backends {
		agent := ""
		if withAgent {
			agent = fmt.Sprintf(" agent-check agent-port %d agent-send \"api/%s\\n\" agent-inter 100ms", agentPort, be.Name)
		}
		fmt.Fprintf(&b, "    server %s %s check inter 100ms fall 1 rise 1 weight 100%s\n", be.Name, be.Addr, agent)
	}
	if backup != "" {
		fmt.Fprintf(&b, "    server b1 %s backup check inter 100ms\n", backup)
	}
	return b.String()
}

// siteConfigText is the daemon configuration of these tests, without the
// keys that the control plane adds (see controlSettings).
func siteConfigText(t testing.TB, socket string, dnsPort, agentPort int) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
site = "alpha"
[haproxy]
socket = %q
backend = "api"
poll_interval = "100ms"
stale_after = "500ms"
[health]
min_up = 3
rise = 2
fall = 2
[dns]
listen = ["127.0.0.1:%d"]
zone = "pool.domain.tld."
shutdown_grace = "0s"
nameservers = ["alpha.domain.tld."]
[dns.records.api]
a = ["127.0.0.1"]
[agent]
listen = "127.0.0.1:%d"
[metrics]
listen = "off"
`, socket, dnsPort, agentPort)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// ctlDaemon is the daemon's main path with the control plane, wired as
// run.go wires it (DNS, poller, agent, control socket), minus metrics and
// notifications.
type ctlDaemon struct {
	poller  *site.Poller
	dnsAddr string
	cancel  context.CancelFunc
	done    chan error
}

func startCtlDaemon(t testing.TB, cfg *config.Config, cs controlSettings) *ctlDaemon {
	t.Helper()
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	dnsSrv, err := dnsserve.New(logger, dnsConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	sc := siteConfig(cfg)
	if err := prepareSite(cs, &sc); err != nil {
		t.Fatal(err)
	}
	rt := haproxy.NewRuntime(cfg.HAProxy.Socket)
	poller := site.New(logger, rt.ShowStat, sc, func(st health.State) { dnsSrv.SetServing(st.Serving) })
	agent := haproxy.NewAgentServer(logger, func(backend, server string) string {
		return poller.Snapshot().AgentReply(backend, server)
	}, cfg.Agent.ReadTimeout.Duration)
	ctl := newControlServer(logger, cs, cfg.Site, cfg.HAProxy.Socket, sc, poller, dnsSrv.Serving)
	if err := dnsSrv.Listen(cfg.DNS.Listen); err != nil {
		t.Fatal(err)
	}
	if err := agent.Listen(cfg.Agent.Listen); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &ctlDaemon{poller: poller, dnsAddr: cfg.DNS.Listen[0], cancel: cancel, done: make(chan error, 4)}
	for _, run := range []func(context.Context) error{dnsSrv.Run, poller.Run, agent.Run, ctl.Run} {
		go func() { d.done <- run(ctx) }()
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop cancels the daemon and waits for every part; stopping twice is fine.
func (d *ctlDaemon) stop(t testing.TB) {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for range 4 {
		select {
		case err := <-d.done:
			if err != nil {
				t.Errorf("daemon part: %v", err)
			}
		case <-timeout.C:
			t.Fatal("daemon did not stop within 5s")
		}
	}
}

// ctlRun runs a control command as the CLI does and returns its exit
// error and output.
func ctlRun(socket string, args ...string) (string, error) {
	var out strings.Builder
	fs := flag.NewFlagSet("spdu-haproxy "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := controlMain(args[0], fs, append([]string{"-socket", socket}, args[1:]...), &out, func() (string, error) {
		return "", fmt.Errorf("no configuration in tests")
	})
	return out.String(), err
}

// tempDir returns a short temporary directory (unix socket paths are
// limited to 108 bytes).
func ctlTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spdu-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func ctlSettings(dir string) controlSettings {
	return controlSettings{
		Socket: filepath.Join(dir, "control.sock"), StateFile: filepath.Join(dir, "state.json"),
		Frontend: "www", QuietPeriod: 500 * time.Millisecond, Mode: "static",
	}
}

// serverStatuses returns the status column of every row of backend api.
func serverStatuses(t testing.TB, hap *testenv.HAProxy) map[string]string {
	t.Helper()
	return statColumn(t, hap, "status")
}

// statColumn returns one column of `show stat api 6 -1` by row name, read
// with the test's own runtime API client.
func statColumn(t testing.TB, hap *testenv.HAProxy, col string) map[string]string {
	t.Helper()
	out, err := hap.Command("show stat api 6 -1")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	ci := slices.Index(header, col)
	if ci < 0 {
		t.Fatalf("show stat has no column %s: %q", col, lines[0])
	}
	rows := map[string]string{}
	for _, l := range lines[1:] {
		if f := strings.Split(l, ","); len(f) == len(header) {
			rows[f[1]] = f[ci]
		}
	}
	return rows
}
