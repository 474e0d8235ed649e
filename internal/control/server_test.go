package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/site"
	"github.com/spdu/spdu-haproxy/internal/status"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// healthy is a StatSource with five usable servers and a backup.
func healthy(context.Context, string) (haproxy.BackendStats, error) {
	st := haproxy.BackendStats{Backend: "api", Algo: "roundrobin", Usable: 5, Total: 5, Active: 5, Backup: 1}
	for i := 1; i <= 5; i++ {
		st.Servers = append(st.Servers, haproxy.Server{Name: fmt.Sprintf("s%d", i), Status: "UP", Weight: 100, Usable: true})
	}
	st.Servers = append(st.Servers, haproxy.Server{Name: "b1", Status: "UP", Weight: 1, Usable: true, Backup: true})
	return st, nil
}

// fakeFrontend is busy until quiet is set.
type fakeFrontend struct{ quiet atomic.Bool }

func (f *fakeFrontend) read() (haproxy.FrontendStats, error) {
	if f.quiet.Load() {
		return haproxy.FrontendStats{Frontend: "www"}, nil
	}
	return haproxy.FrontendStats{Frontend: "www", Rate: 40, ReqRate: 120, Scur: 9}, nil
}

type fixture struct {
	socket string
	store  *Store
	poller *site.Poller
	front  *fakeFrontend
	cancel context.CancelFunc
	done   chan error
}

// start runs a poller and a control server in a temporary directory.
func start(t *testing.T, withFrontend bool) *fixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fixture{socket: filepath.Join(dir, "control.sock"), store: NewStore(filepath.Join(dir, "state.json"), nil), front: &fakeFrontend{}}
	d, _, err := f.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	f.poller, err = site.New(zerolog.Nop(), site.Config{Source: healthy, Backend: "api", Interval: 5 * time.Millisecond, Timeout: 2 * time.Millisecond,
		Policy:       health.Policy{MinUp: health.Quorum{Count: 3}, Rise: 1, Fall: 1, StaleAfter: time.Second},
		DrainServers: true, Drain: d, SaveDrain: f.store.Save}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var src FrontendSource
	if withFrontend {
		src = f.front.read
	}
	doc := func() status.Document {
		return status.Build(status.Input{Site: "alpha", AgentMode: config.AgentStatic}, f.poller.Snapshot())
	}
	srv := New(zerolog.New(zerolog.NewTestWriter(t)), Config{Socket: f.socket, Frontend: src,
		QuietPeriod: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond}, f.poller, doc)
	if err := srv.Bind(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan error, 2)
	go func() { f.done <- f.poller.Run(ctx) }()
	go func() { f.done <- srv.Run(ctx) }()
	t.Cleanup(f.stop)
	testenv.Eventually(t, 5*time.Second, "serving", func() bool { return f.poller.Snapshot().Health.Serving })
	return f
}

func (f *fixture) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	for range 2 {
		<-f.done
	}
	f.cancel = nil
}

func call(t *testing.T, socket string, req Request) (Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Call(ctx, socket, req)
}

func TestDrainResumeStatus(t *testing.T) {
	f := start(t, false)
	fi, err := os.Stat(f.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want 0600", fi.Mode().Perm())
	}
	resp, err := call(t, f.socket, Request{Cmd: CmdStatus})
	if err != nil || !resp.Status.Serving || resp.Status.Drain.Active || len(resp.Status.Servers) != 6 {
		t.Fatalf("status: %+v, %v", resp, err)
	}
	resp, err = call(t, f.socket, Request{Cmd: CmdDrain, Reason: "rack move"})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.Status
	if st.Serving || !st.Drain.Active || st.Drain.Reason != "rack move" || len(st.Drain.Servers) != 5 {
		t.Errorf("after drain: %+v", st)
	}
	if s1 := st.Servers[0]; s1.AgentReply != "drain" || s1.Advertised != 0 || s1.Applied != 100 {
		t.Errorf("s1 after drain: %+v", s1)
	}
	if d, _, err := f.store.Load(); err != nil || !d.Active || d.Reason != "rack move" {
		t.Errorf("state file after drain: %+v, %v", d, err)
	}
	if _, err := call(t, f.socket, Request{Cmd: CmdDrain, Wait: time.Second}); err == nil || !strings.Contains(err.Error(), "needs haproxy.frontend") {
		t.Errorf("drain -wait without a frontend: %v", err)
	}
	resp, err = call(t, f.socket, Request{Cmd: CmdResume})
	if err != nil || resp.Status.Drain.Active {
		t.Fatalf("resume: %+v, %v", resp.Status.Drain, err)
	}
	if s1 := resp.Status.Servers[0]; s1.AgentReply != "ready" {
		t.Errorf("s1 after resume: %+v", s1)
	}
	if _, err := call(t, f.socket, Request{Cmd: "reboot"}); !errors.Is(err, ErrCommand) || !strings.Contains(err.Error(), `unknown command "reboot"`) {
		t.Errorf("unknown command: %v", err)
	}
}

func TestDrainWait(t *testing.T) {
	f := start(t, true)
	resp, err := call(t, f.socket, Request{Cmd: CmdDrain, Reason: "x", Wait: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not quiet for 50ms within 100ms: frontend www still busy: 40 sessions/s, 120 requests/s") {
		t.Errorf("drain -wait on a busy frontend: %v", err)
	}
	if !resp.Status.Drain.Active || resp.Waited < 100*time.Millisecond {
		t.Errorf("drain -wait timed out: drained %v after %v; want drained after 100ms", resp.Status.Drain.Active, resp.Waited)
	}
	f.front.quiet.Store(true)
	resp, err = call(t, f.socket, Request{Cmd: CmdDrain, Reason: "x", Wait: 5 * time.Second})
	if err != nil || resp.Waited < 50*time.Millisecond || resp.Waited > 4*time.Second {
		t.Errorf("drain -wait on a quiet frontend: waited %v, %v", resp.Waited, err)
	}
}

// TestShutdownDuringWait: stopping the daemon answers a pending drain
// -wait with an error and Run returns.
func TestShutdownDuringWait(t *testing.T) {
	f := start(t, true)
	got := make(chan error, 1)
	go func() {
		_, err := Call(context.Background(), f.socket, Request{Cmd: CmdDrain, Wait: time.Minute})
		got <- err
	}()
	testenv.Eventually(t, 5*time.Second, "drained", func() bool { return f.poller.Snapshot().Drain.Active })
	f.stop()
	if err := <-got; err == nil || !strings.Contains(err.Error(), "stopped waiting") {
		t.Errorf("pending drain -wait at shutdown: %v", err)
	}
	if _, err := os.Stat(f.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Run: %v", err)
	}
}

// TestShutdownWithSilentClient: a client connected without a request does
// not hold up Run at shutdown (the request read would wait 5 s).
func TestShutdownWithSilentClient(t *testing.T) {
	f := start(t, false)
	c, err := net.Dial("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server has accepted it once a status call, made after it, is
	// answered (one accept loop, in order).
	if _, err := call(t, f.socket, Request{Cmd: CmdStatus}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f.stop()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Run took %s to stop with a silent client connected; want well under the 5 s request timeout", took)
	}
}

func TestListenSocketChecks(t *testing.T) {
	dir, err := os.MkdirTemp("", "ctl-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	newSrv := func(path string) *Server {
		return New(zerolog.Nop(), Config{Socket: path}, nil, nil)
	}
	// A regular file is never removed.
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := newSrv(file).Bind(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	// A live socket is another daemon.
	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	if err := newSrv(live).Bind(); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("Listen over a live socket: %v", err)
	}
	ln.Close()
	// A stale socket (its listener gone) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	l2, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l2.SetUnlinkOnClose(false)
	l2.Close()
	s := newSrv(stale)
	if err := s.Bind(); err != nil {
		t.Errorf("Listen over a stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestConnectionCap: MaxConns silent clients hold every slot; one more
// connection is closed without an answer; once they leave, requests are
// answered again.
func TestConnectionCap(t *testing.T) {
	f := start(t, false)
	var held []net.Conn
	for range MaxConns {
		c, err := net.Dial("unix", f.socket)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The server has taken all of them once a call made after them is
	// refused (one accept loop, in order).
	if _, err := call(t, f.socket, Request{Cmd: CmdStatus}); err == nil {
		t.Fatalf("status answered with %d connections held; want the connection closed", MaxConns)
	}
	for _, c := range held {
		c.Close()
	}
	testenv.Eventually(t, 5*time.Second, "served again", func() bool {
		_, err := call(t, f.socket, Request{Cmd: CmdStatus})
		return err == nil
	})
}
