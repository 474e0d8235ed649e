package site

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// script is a StatSource that replays results, one per poll, and repeats the
// last one; it counts calls.
type script struct {
	mu      sync.Mutex
	results []result
	calls   atomic.Int64
}

type result struct {
	usable int
	err    error
}

func (s *script) source(ctx context.Context, backend string) (haproxy.BackendStats, error) {
	n := s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.results[min(int(n)-1, len(s.results)-1)]
	if r.err != nil {
		return haproxy.BackendStats{}, r.err
	}
	servers := make([]haproxy.Server, 5)
	for i := range servers {
		servers[i] = haproxy.Server{Name: "s" + string(rune('1'+i)), Usable: i < r.usable}
	}
	return haproxy.BackendStats{Backend: backend, Servers: servers, Usable: r.usable, Total: 5}, nil
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// mustNew is New for tests: it fails the test on an error.
func mustNew(t *testing.T, logger zerolog.Logger, cfg Config, onChange func(health.State)) *Poller {
	t.Helper()
	p, err := New(logger, cfg, onChange)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, what, cond)
}

// TestPollerPublishes drives a poller through serve, failing polls and
// withdrawal, and checks the snapshots, the change callbacks and that a
// repeated poll error is logged once.
func TestPollerPublishes(t *testing.T) {
	errDown := errors.New("dial unix /x.sock: connect: no such file or directory")
	src := &script{results: []result{{usable: 5}, {usable: 5}, {usable: 5}, {err: errDown}}}
	var logs syncBuf
	var mu sync.Mutex
	var changes []bool
	p := mustNew(t, zerolog.New(&logs), Config{Source: src.source,
		Site: "alpha", Backend: "api", Interval: 5 * time.Millisecond, Timeout: 2 * time.Millisecond,
		Policy: health.Policy{MinUp: health.Quorum{Count: 3}, Rise: 2, Fall: 2, StaleAfter: 50 * time.Millisecond},
	}, func(st health.State) {
		mu.Lock()
		changes = append(changes, st.Serving)
		mu.Unlock()
	})
	if p.Snapshot().Health.Serving {
		t.Fatal("serving before the first poll")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-p.Ready()

	waitFor(t, "serving", func() bool { return p.Snapshot().Health.Serving })
	snap := p.Snapshot()
	if !snap.HasServer("s1") || snap.HasServer("s9") || snap.Stats.Total != 5 {
		t.Errorf("snapshot servers: %+v", snap.Stats)
	}
	waitFor(t, "withdrawn after stale_after of failing polls", func() bool {
		s := p.Snapshot()
		return !s.Health.Serving && s.Polls > 10
	})
	// The last good stats stay in the snapshot while polls fail.
	if s := p.Snapshot(); !s.HasServer("s1") || !strings.Contains(s.Health.Reason, errDown.Error()) {
		t.Errorf("after failures: HasServer(s1)=%v reason %q", s.HasServer("s1"), s.Health.Reason)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return after cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || !changes[0] || changes[1] {
		t.Errorf("changes = %v, want [true false]", changes)
	}
	if n := strings.Count(logs.String(), "runtime API poll failed"); n != 1 {
		t.Errorf("poll error logged %d times, want once per change", n)
	}
	if n := strings.Count(logs.String(), "site state changed"); n != 2 {
		t.Errorf("state change logged %d times, want 2", n)
	}
}
