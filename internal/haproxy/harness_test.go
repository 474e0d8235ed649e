package haproxy

import (
	"bytes"
	"context"

	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// This file starts a real HAProxy for the tests: HTTP backends on
// 127.0.0.1:0, a generated configuration in t.TempDir() and `haproxy -db` as
// a child process killed at the end of the test.

// pollEvery is how often tests re-check a condition while waiting for it.
const pollEvery = 10 * time.Millisecond

// waitFor polls f until it reports done or timeout passes; it returns f's
// last value. what names the condition in the failure message.
func waitFor[T any](t *testing.T, timeout time.Duration, what string, f func() (T, bool)) T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		v, done := f()
		if done {
			return v
		}
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s; last value: %+v", timeout, what, v)
		case <-tick.C:
		}
	}
}

// testBackend is one HTTP server behind HAProxy. GET /status answers
// checkCode; any other path answers code.
type testBackend struct {
	srv       *httptest.Server
	checkCode atomic.Int32
	code      atomic.Int32
}

func startTestBackend(t *testing.T) *testBackend {
	t.Helper()
	b := &testBackend{}
	b.checkCode.Store(http.StatusOK)
	b.code.Store(http.StatusOK)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" {
			w.WriteHeader(int(b.checkCode.Load()))
			return
		}
		w.WriteHeader(int(b.code.Load()))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *testBackend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// haproxyOpts shapes the generated configuration.
type haproxyOpts struct {
	// agentPort is where s1..s5's agent checks connect; 0 means no agent
	// checks.
	agentPort int
	// slowFall names a server checked with fall 3 and fastinter 300ms, so
	// that its "UP 2/3", "UP 1/3" states last long enough to be seen.
	slowFall string
}

// testHAProxy is a running HAProxy with backend "api": active servers
// s1..s5 and backup server b1, all weight 100.
type testHAProxy struct {
	dir      string
	socket   string // admin stats socket
	feSocket string // frontend "fe", unix socket, default_backend api
	backends map[string]*testBackend
	rt       *Runtime
}

var activeServers = []string{"s1", "s2", "s3", "s4", "s5"}

func haproxyBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	t.Fatal("haproxy binary not found: install Debian's haproxy package (.ci/run does)")
	return ""
}

// startHAProxy starts HAProxy and waits until its stats socket answers and
// all servers are up.
func startHAProxy(t *testing.T, opts haproxyOpts) *testHAProxy {
	t.Helper()
	bin := haproxyBinary(t)
	dir := t.TempDir()
	h := &testHAProxy{
		dir:      dir,
		socket:   filepath.Join(dir, "admin.sock"),
		feSocket: filepath.Join(dir, "fe.sock"),
		backends: map[string]*testBackend{},
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
    stats socket %s mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout check 1s
frontend fe
    bind unix@%s
    default_backend api
backend api
    balance roundrobin
    option httpchk GET /status
    http-check disable-on-404
    default-server check inter 100ms rise 1 fall 1 weight 100
`, h.socket, h.feSocket)
	for _, name := range append(append([]string{}, activeServers...), "b1") {
		b := startTestBackend(t)
		h.backends[name] = b
		fmt.Fprintf(&cfg, "    server %s %s", name, b.addr())
		if name == "b1" {
			cfg.WriteString(" backup")
		} else if opts.agentPort != 0 {
			fmt.Fprintf(&cfg, ` agent-check agent-port %d agent-send "api/%s\n" agent-inter 100ms`, opts.agentPort, name)
		}
		if name == opts.slowFall {
			cfg.WriteString(" fall 3 fastinter 300ms")
		}
		cfg.WriteString("\n")
	}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	var out lockedBuffer
	cmd := exec.Command(bin, "-f", cfgPath, "-db")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("haproxy config:\n%s\nhaproxy output:\n%s", cfg.String(), out.String())
		}
	})

	h.rt = NewRuntime(h.socket)
	waitFor(t, 5*time.Second, "haproxy stats socket", func() (error, bool) {
		select {
		case <-exited:
			t.Fatalf("haproxy exited early:\n%s", out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := h.rt.Execute(ctx, "show info")
		return err, err == nil
	})
	h.waitUsable(t, len(activeServers))
	return h
}

// stat runs ShowStat for backend api and fails the test on error.
func (h *testHAProxy) stat(t *testing.T) BackendStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := h.rt.ShowStat(ctx, "api")
	if err != nil {
		t.Fatalf("ShowStat: %v", err)
	}
	return st
}

// waitStat polls ShowStat until cond holds.
func (h *testHAProxy) waitStat(t *testing.T, what string, cond func(BackendStats) bool) BackendStats {
	t.Helper()
	return waitFor(t, 5*time.Second, what, func() (BackendStats, bool) {
		st := h.stat(t)
		return st, cond(st)
	})
}

// waitUsable waits until exactly n active servers of api are usable.
func (h *testHAProxy) waitUsable(t *testing.T, n int) BackendStats {
	t.Helper()
	return h.waitStat(t, fmt.Sprintf("%d usable servers", n), func(st BackendStats) bool { return st.Usable == n })
}

// waitServer waits until server name satisfies cond.
func (h *testHAProxy) waitServer(t *testing.T, name, what string, cond func(Server) bool) BackendStats {
	t.Helper()
	return h.waitStat(t, name+" "+what, func(st BackendStats) bool {
		s, ok := findServer(st, name)
		return ok && cond(s)
	})
}

// exec runs a runtime API command and fails the test on error.
func (h *testHAProxy) exec(t *testing.T, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := h.rt.Execute(ctx, cmd)
	if err != nil {
		t.Fatalf("Execute(%q): %v", cmd, err)
	}
	return out
}

// raw sends cmd to the stats socket without client-native and returns the
// exact bytes HAProxy wrote.
func (h *testHAProxy) raw(t *testing.T, cmd string) []byte {
	t.Helper()
	conn, err := net.Dial("unix", h.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read %q: %v", cmd, err)
	}
	return out
}

// get sends n requests for / through the frontend.
func (h *testHAProxy) get(t *testing.T, n int) {
	t.Helper()
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", h.feSocket)
			},
			DisableKeepAlives: true,
		},
	}
	for range n {
		resp, err := client.Get("http://haproxy/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func findServer(st BackendStats, name string) (Server, bool) {
	for _, s := range st.Servers {
		if s.Name == name {
			return s, true
		}
	}
	return Server{}, false
}

// testAgent is an AgentServer for tests whose replies are set per server.
type testAgent struct {
	*AgentServer
	// stop stops the agent server and waits for Run; it also runs at test
	// end.
	stop func()

	mu      sync.Mutex
	replies map[string]string // "backend/server" -> reply
	calls   map[string]int    // "backend/server" -> requests served
}

// startTestAgent starts an AgentServer on 127.0.0.1:0 that answers the
// reply set for a server, or AgentNoChange; it stops at test end.
func startTestAgent(t *testing.T) *testAgent {
	t.Helper()
	ta := &testAgent{replies: map[string]string{}, calls: map[string]int{}}
	ta.AgentServer = NewAgentServer(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), ta.reply, AgentConfig{Listen: "127.0.0.1:0"})
	if err := ta.Bind(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ta.Run(ctx) }()
	var once sync.Once
	ta.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent Run: %v", err)
			}
		})
	}
	t.Cleanup(ta.stop)
	return ta
}

func (ta *testAgent) reply(backend, server string) string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	key := backend + "/" + server
	ta.calls[key]++
	if r, ok := ta.replies[key]; ok {
		return r
	}
	return AgentNoChange
}

func (ta *testAgent) set(key, reply string) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.replies[key] = reply
}

func (ta *testAgent) callCount(key string) int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.calls[key]
}

func (ta *testAgent) port() int { return ta.Addr().(*net.TCPAddr).Port }

// lockedBuffer collects a child process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
