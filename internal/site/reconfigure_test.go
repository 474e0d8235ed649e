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
	cfg.Source = src.source
	p := mustNew(t, zerolog.Nop(), cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "serving", func() bool { return p.Snapshot().Health.Serving })

	// Same policy, a slower interval: still serving right away.
	slower := cfg
	slower.Source = nil // keep the running source
	slower.Interval = 20 * time.Millisecond
	plan, err := p.Prepare(slower)
	if err != nil {
		t.Fatal(err)
	}
	p.Apply(plan)
	if !p.Snapshot().Health.Serving {
		t.Fatal("a reload withdrew a healthy site")
	}
	// A stricter quorum from a new source: withdrawn after fall polls.
	stricter := slower
	stricter.Policy.MinUp = health.Quorum{Count: 5}
	four := &script{results: []result{{usable: 4}}}
	stricter.Source = four.source
	plan, err = p.Prepare(stricter)
	if err != nil {
		t.Fatal(err)
	}
	p.Apply(plan)
	waitFor(t, "withdrawn under the new quorum", func() bool {
		s := p.Snapshot()
		return !s.Health.Serving && s.Health.Required == 5
	})
	if four.calls.Load() == 0 {
		t.Error("the new source was never polled")
	}
	// A bad configuration is refused and changes nothing.
	bad := stricter
	bad.Timeout = bad.Interval
	if _, err := p.Prepare(bad); err == nil {
		t.Error("Prepare accepted a timeout as long as the interval")
	}
	cancel()
	<-done
	done <- nil
	p.Apply(plan) // after Run: does nothing, never blocks
}
