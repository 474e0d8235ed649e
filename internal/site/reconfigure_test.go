package site

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/health"
)

// TestReconfigureKeepsState: a reload keeps a serving site serving, and the
// new policy and source apply from the next poll on.
func TestReconfigureKeepsState(t *testing.T) {
	src := &script{results: []result{{usable: 5}}}
	cfg := Config{Site: "alpha", Backend: "api", Interval: 5 * time.Millisecond, Timeout: 2 * time.Millisecond,
		Policy: health.Policy{MinUp: health.Quorum{Count: 3}, Rise: 2, Fall: 2, StaleAfter: time.Second}}
	p := New(zerolog.Nop(), src.source, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "serving", func() bool { return p.Snapshot().Health.Serving })

	// Same policy, a slower interval: still serving right away.
	slower := cfg
	slower.Interval = 20 * time.Millisecond
	if err := p.Reconfigure(ctx, slower, nil); err != nil {
		t.Fatal(err)
	}
	if !p.Snapshot().Health.Serving {
		t.Fatal("a reload withdrew a healthy site")
	}
	// A stricter quorum from a new source: withdrawn after fall polls.
	stricter := slower
	stricter.Policy.MinUp = health.Quorum{Count: 5}
	four := &script{results: []result{{usable: 4}}}
	if err := p.Reconfigure(ctx, stricter, four.source); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "withdrawn under the new quorum", func() bool {
		s := p.Snapshot()
		return !s.Health.Serving && s.Health.Required == 5
	})
	if four.calls.Load() == 0 {
		t.Error("the new source was never polled")
	}
	cancel()
	<-done
	done <- nil
	if err := p.Reconfigure(context.Background(), cfg, nil); err != ErrStopped {
		t.Errorf("Reconfigure after Run returned: %v, want ErrStopped", err)
	}
}
