// Package testenv starts the real parts that spdu-haproxy's integration tests
// run against: HTTP backends on loopback and a real HAProxy process (the
// Debian package's /usr/sbin/haproxy) with a generated configuration. It is
// imported only by tests. Everything it starts listens on 127.0.0.1 only and
// is stopped by t.Cleanup.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Eventually polls cond every 10 ms until it returns true or timeout passes,
// and returns how long that took. It fails the test with msg on timeout.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func() bool) time.Duration {
	t.Helper()
	return EventuallyEvery(t, timeout, 10*time.Millisecond, msg, cond)
}

// EventuallyEvery is Eventually polling every interval, for conditions
// read from a rate-limited listener (the metrics listener's 50 requests
// per second).
func EventuallyEvery(t testing.TB, timeout, interval time.Duration, msg string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return time.Since(start)
		}
		select {
		case <-deadline.C:
			t.Fatalf("not within %s: %s", timeout, msg)
		case <-tick.C:
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Backend is one HTTP backend on a fixed loopback address that can be
// stopped and started again on the same address. It answers GET /status
// with 200 at once and every other path with "hello from NAME" after
// Delay, as cmd/demo-backend -delay does.
type Backend struct {
	Name  string
	Addr  string // "127.0.0.1:port"
	Delay time.Duration

	mu  sync.Mutex
	srv *http.Server
}

// StartBackends starts n backends named s1..sn on free loopback ports.
func StartBackends(t testing.TB, n int) []*Backend {
	t.Helper()
	return StartSlowBackends(t, make([]time.Duration, n)...)
}

// StartSlowBackends starts one backend per delay, named s1..sN, on free
// loopback ports.
func StartSlowBackends(t testing.TB, delays ...time.Duration) []*Backend {
	t.Helper()
	bs := make([]*Backend, len(delays))
	for i := range bs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		bs[i] = &Backend{Name: fmt.Sprintf("s%d", i+1), Addr: l.Addr().String(), Delay: delays[i]}
		bs[i].serve(l)
		t.Cleanup(bs[i].Stop)
	}
	return bs
}

func (b *Backend) serve(l net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if b.Delay > 0 {
			timer := time.NewTimer(b.Delay) // plays a slow server; not synchronisation
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "hello from %s\n", b.Name)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(l) //nolint:errcheck // returns ErrServerClosed on Stop
}

// Stop closes the backend's listener and connections; HAProxy's checks then
// get "connection refused". Stopping a stopped backend does nothing.
func (b *Backend) Stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Start serves again on the same address.
func (b *Backend) Start(t testing.TB) {
	t.Helper()
	var l net.Listener
	Eventually(t, 5*time.Second, "rebind "+b.Addr, func() bool {
		var err error
		l, err = net.Listen("tcp", b.Addr)
		return err == nil
	})
	b.serve(l)
}

// HAProxy is a running haproxy process.
type HAProxy struct {
	// Socket is the runtime API (stats socket) path, level admin.
	Socket string
	// Dir holds the configuration and the socket.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// HAProxyBinary is the haproxy executable the tests run.
const HAProxyBinary = "/usr/sbin/haproxy"

// StartHAProxy writes cfg (which may use {{SOCKET}} for the stats socket
// path) to a temporary directory, starts haproxy in the foreground and
// returns once its runtime API answers. The process is killed at cleanup.
// A missing haproxy binary fails the test: CI installs it.
func StartHAProxy(t testing.TB, cfg string) *HAProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "spdu-haproxy-test-") // short path: unix socket names are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &HAProxy{Socket: filepath.Join(dir, "admin.sock"), Dir: dir}
	cfg = strings.ReplaceAll(cfg, "{{SOCKET}}", h.Socket)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, HAProxyBinary, "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	h.start(t, path)
	return h
}

func (h *HAProxy) start(t testing.TB, path string) {
	t.Helper()
	h.out = &syncBuffer{}
	h.cmd = exec.Command(HAProxyBinary, "-db", "-f", path)
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	h.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(h.cmd, h.done) //nolint:errcheck // killed on purpose
	t.Cleanup(h.Kill)
	Eventually(t, 10*time.Second, "haproxy runtime API answers", func() bool {
		_, err := h.Command("show info")
		return err == nil
	})
}

// Restart starts haproxy again with the same configuration after Kill.
func (h *HAProxy) Restart(t testing.TB) {
	t.Helper()
	h.start(t, filepath.Join(h.Dir, "haproxy.cfg"))
}

// Kill stops haproxy with SIGKILL and waits for it to exit.
func (h *HAProxy) Kill() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	h.cmd.Process.Kill() //nolint:errcheck // may have exited already
	<-h.done
}

// Signal sends sig to haproxy (SIGSTOP and SIGCONT freeze and thaw it).
func (h *HAProxy) Signal(sig syscall.Signal) error { return h.cmd.Process.Signal(sig) }

// Output returns what haproxy printed so far (for failure messages).
func (h *HAProxy) Output() string { return h.out.String() }

// Command runs one runtime API command on a fresh connection with a 5 s
// deadline (generous: tests that load the machine on purpose still get
// their reading) and returns the reply. It is a test-side client,
// independent of the code under test.
func (h *HAProxy) Command(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", h.Socket)
	if err != nil {
		return "", err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl) //nolint:errcheck // checked by the reads below
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(c)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return buf.String(), err
	}
	return buf.String(), nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
