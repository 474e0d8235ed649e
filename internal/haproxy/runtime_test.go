package haproxy

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestShowStatLive walks a real HAProxy through the states the daemon must
// count: a stopped backend, drain, maint and weight 0.
func TestShowStatLive(t *testing.T) {
	t.Parallel()
	h := startHAProxy(t, haproxyOpts{})
	st := h.stat(t)
	if st.Total != 5 || st.Usable != 5 || st.Active != 5 || st.Backup != 1 || len(st.Servers) != 6 {
		t.Fatalf("start: got %+v", st)
	}

	steps := []struct {
		name   string
		act    func()
		server string
		status string
		usable int
	}{
		{"stop s1", func() { h.backends["s1"].srv.Close() }, "s1", "DOWN", 4},
		{"drain s2", func() { h.exec(t, "set server api/s2 state drain") }, "s2", "DRAIN", 3},
		{"maint s3", func() { h.exec(t, "set server api/s3 state maint") }, "s3", "MAINT", 2},
		{"weight 0 s4", func() { h.exec(t, "set server api/s4 weight 0") }, "s4", "UP", 1},
		{"503 on s5", func() { h.backends["s5"].checkCode.Store(503) }, "s5", "DOWN", 0},
		{"s5 back", func() { h.backends["s5"].checkCode.Store(200) }, "s5", "UP", 1},
		{"s2 ready", func() { h.exec(t, "set server api/s2 state ready") }, "s2", "UP", 2},
	}
	for _, step := range steps {
		step.act()
		st := h.waitUsable(t, step.usable)
		s, _ := findServer(st, step.server)
		if s.Status != step.status {
			t.Errorf("%s: %s status %q, want %q", step.name, step.server, s.Status, step.status)
		}
		if st.Total != 5 || st.Active != step.usable {
			t.Errorf("%s: Total %d Active %d, want 5 and %d", step.name, st.Total, st.Active, step.usable)
		}
		if b, _ := findServer(st, "b1"); !b.Backup || !b.Usable {
			t.Errorf("%s: backup server %+v, want usable backup", step.name, b)
		}
	}

	// A full `show stat` (FRONTEND rows, other proxies) parses too.
	if _, err := ParseStat(h.raw(t, "show stat"), "api"); err != nil {
		t.Errorf("ParseStat(full show stat): %v", err)
	}
}

// TestShowStatCounters checks the per-server counters on live traffic.
func TestShowStatCounters(t *testing.T) {
	t.Parallel()
	h := startHAProxy(t, haproxyOpts{})
	h.backends["s3"].code.Store(502)
	h.get(t, 20)
	st := h.stat(t)
	var total int64
	for _, s := range st.Servers {
		if s.Name != "s3" && s.Hrsp5xx != 0 {
			t.Errorf("%s Hrsp5xx = %d, want 0", s.Name, s.Hrsp5xx)
		}
		total += s.Hrsp5xx
	}
	if s3, _ := findServer(st, "s3"); s3.Hrsp5xx == 0 || total != s3.Hrsp5xx {
		t.Errorf("s3 Hrsp5xx = %d (total %d), want all 5xx on s3", s3.Hrsp5xx, total)
	}
}

// TestShowSiteLive: the backend and the frontend's row in one request to a
// real HAProxy, with the frontend's session counts; an unknown frontend is
// an error.
func TestShowSiteLive(t *testing.T) {
	t.Parallel()
	h := startHAProxy(t, haproxyOpts{})
	h.get(t, 5)
	rt := NewRuntime(h.socket)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := rt.ShowSite(ctx, "api", "fe")
	if err != nil {
		t.Fatal(err)
	}
	if st.Frontend == nil || st.Frontend.Frontend != "fe" || st.Frontend.Stot < 5 || st.Frontend.Slim <= 0 || st.Total != len(activeServers) {
		t.Errorf("ShowSite = backend %d servers, frontend %+v", st.Total, st.Frontend)
	}
	if _, err := rt.ShowSite(ctx, "api", "nope"); err == nil {
		t.Error("ShowSite with an unknown frontend succeeded")
	}
	if st, err := rt.ShowSite(ctx, "api", ""); err != nil || st.Frontend != nil {
		t.Errorf("ShowSite without a frontend: %+v, %v", st.Frontend, err)
	}
}

func TestShowStatErrorsLive(t *testing.T) {
	t.Parallel()
	h := startHAProxy(t, haproxyOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	tests := []struct {
		backend string
		wantErr string
	}{
		// client-native turns HAProxy's "[3]: No such proxy." into an error.
		{"nosuch", "No such proxy."},
		// HAProxy falls back to a proxy id: 99 does not exist, so only the
		// header comes back.
		{"99", "no BACKEND row"},
		// Id 1 exists (another proxy): its rows are not "1"'s and are skipped.
		{"1", "no BACKEND row"},
		{"api;help", "bad backend name"},
		{"", "bad backend name"},
	}
	for _, tt := range tests {
		st, err := h.rt.ShowStat(ctx, tt.backend)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ShowStat(%q) = %+v, %v; want error containing %q", tt.backend, st, err, tt.wantErr)
		}
	}

	if _, err := h.rt.Execute(ctx, "set server api/nosuch weight 10"); err == nil || !strings.Contains(err.Error(), "No such server") {
		t.Errorf("Execute(unknown server) error = %v, want No such server", err)
	}
	if _, err := h.rt.Execute(ctx, "show info\nshow stat"); err == nil {
		t.Error("Execute accepted a newline")
	}
}

func TestShowStatMissingSocket(t *testing.T) {
	t.Parallel()
	rt := NewRuntime(filepath.Join(t.TempDir(), "nosuch.sock"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := rt.ShowStat(ctx, "api")
	if err == nil || errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("ShowStat = %+v, %v; want a dial error", st, err)
	}
}

func TestShowStatNotASocket(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if st, err := NewRuntime(path).ShowStat(ctx, "api"); err == nil {
		t.Fatalf("ShowStat = %+v, want error", st)
	}
}

// hungSocket starts a unix listener that accepts and never replies. stop
// closes it and its connections; it also runs at test end.
func hungSocket(t *testing.T) (path string, stop func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "hung.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	t.Cleanup(stop)
	return path, stop
}

func TestShowStatHungSocket(t *testing.T) {
	t.Parallel()
	path, stop := hungSocket(t)
	rt := NewRuntime(path)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := rt.ShowStat(ctx, "api")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ShowStat error = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("ShowStat took %s with a 200ms deadline", d)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	start = time.Now()
	_, err = rt.ShowStat(ctx2, "api")
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second ShowStat error = %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("ErrBusy took %s, want at once", d)
	}

	// Once the listener and its connections close, the stuck call ends
	// and the Runtime is usable again: the socket file is gone, so the
	// next call fails with a dial error, not ErrBusy.
	stop()
	waitFor(t, 5*time.Second, "stuck call to end", func() (error, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := rt.ShowStat(ctx, "api")
		return err, err != nil && !errors.Is(err, ErrBusy)
	})
}

func TestExecuteCanceledContext(t *testing.T) {
	t.Parallel()
	path, _ := hungSocket(t)
	rt := NewRuntime(path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rt.Execute(ctx, "show info"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute error = %v, want context.Canceled", err)
	}
	// Nothing was started, so the Runtime is not busy.
	if rt.busy.Load() {
		t.Error("Runtime busy after a call that never started")
	}
}

// fakeStatsSocket serves a unix socket that answers the n-th connection
// (from 0) with reply(n) and closes it, like HAProxy's stats socket does in
// non-interactive mode. It returns the socket path and a connection count.
func fakeStatsSocket(t *testing.T, reply func(n int) []byte) (path string, count func() int) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu sync.Mutex
		n  int
		wg sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			i := n
			n++
			mu.Unlock()
			buf := make([]byte, 4096)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Read(buf) // the command line
			_, _ = c.Write(reply(i))
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return path, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

func TestShowStatRetriesInconsistentDump(t *testing.T) {
	t.Parallel()
	good := readFixture(t, "all_up.csv")
	bad := editField(t, good, "BACKEND", "act", "4")
	tests := []struct {
		name      string
		badDumps  int
		wantErr   error
		wantCalls int
	}{
		{"consistent at once", 0, nil, 1},
		{"consistent on the second dump", 1, nil, 2},
		{"consistent on the third dump", 2, nil, 3},
		{"never consistent", 3, ErrInconsistent, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, count := fakeStatsSocket(t, func(n int) []byte {
				if n < tt.badDumps {
					return bad
				}
				return good
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			st, err := NewRuntime(path).ShowStat(ctx, "api")
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ShowStat error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && st.Usable != 5 {
				t.Errorf("Usable = %d, want 5", st.Usable)
			}
			if got := count(); got != tt.wantCalls {
				t.Errorf("%d dumps read, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestShowStatTruncatedReply: client-native returns whatever it read before
// the connection broke as a success; ShowStat must still fail.
func TestShowStatTruncatedReply(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"truncated_midrow.csv", "truncated_rowboundary.csv"} {
		t.Run(file, func(t *testing.T) {
			data := readFixture(t, file)
			path, _ := fakeStatsSocket(t, func(int) []byte { return data })
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if st, err := NewRuntime(path).ShowStat(ctx, "api"); err == nil {
				t.Fatalf("ShowStat = %+v, want error", st)
			}
		})
	}
	t.Run("empty reply", func(t *testing.T) {
		path, _ := fakeStatsSocket(t, func(int) []byte { return nil })
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := NewRuntime(path).ShowStat(ctx, "api"); err == nil || !strings.Contains(err.Error(), "empty input") {
			t.Fatalf("ShowStat error = %v, want empty input", err)
		}
	})
}
