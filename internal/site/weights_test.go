package site

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
)

// traffic makes every poll of src show 10 more requests on every server.
func traffic(src *live, slow string) {
	for _, n := range []string{"s1", "s2", "s3", "s4", "s5"} {
		src.set(n, func(s *haproxy.Server) {
			s.Stot += 10
			s.Rtime = 2
			if n == slow {
				s.Rtime = 300
			}
		})
	}
}

func TestAdaptiveWeightsPublished(t *testing.T) {
	for _, tc := range []struct {
		algo       string
		wantS5     int
		wantStatic bool
	}{
		{"roundrobin", 10, false},
		{"static-rr", 100, true},
	} {
		t.Run(tc.algo, func(t *testing.T) {
			src := newLive(true)
			src.mu.Lock()
			src.st.Algo = tc.algo
			src.mu.Unlock()
			p, logs := startPoller(t, src, Config{Adaptive: &health.WeightPolicy{MinWeight: 10}}, nil)
			waitFor(t, "weights published", func() bool {
				traffic(src, "s5")
				s := p.Snapshot()
				return len(s.Weights) == 5 && s.Polls > 5
			})
			s := p.Snapshot()
			if s.Weight("s5") != tc.wantS5 || s.Weight("s1") != 100 || s.StaticAlgo != tc.wantStatic {
				t.Errorf("weights %v static %v, want s5 at %d%%", s.Weights, s.StaticAlgo, tc.wantS5)
			}
			if _, ok := s.Weights["b1"]; ok {
				t.Error("the backup server got a weight")
			}
			if got := s.AgentReply("api", "s5"); got != health.Reply(health.AgentInput{Known: true, Weight: tc.wantS5}) {
				t.Errorf("AgentReply(s5) = %q", got)
			}
			if got := s.AgentReply("web", "s5"); got != haproxy.AgentUnknown {
				t.Errorf("AgentReply for another backend = %q, want no change", got)
			}
			if n := strings.Count(logs.String(), "adaptive weights have no effect"); tc.wantStatic != (n == 1) || n > 1 {
				t.Errorf("static algorithm warning logged %d times", n)
			}
		})
	}
}

func TestStaticModeAdvertisesFull(t *testing.T) {
	src := newLive(true)
	p, _ := startPoller(t, src, Config{}, nil)
	waitFor(t, "polls with traffic", func() bool { traffic(src, "s5"); return p.Snapshot().Polls > 5 })
	if s := p.Snapshot(); s.Weights != nil || s.AgentReply("", "s5") != "100%" {
		t.Errorf("static mode: weights %v reply %q", s.Weights, s.AgentReply("", "s5"))
	}
}

// TestPollCounters checks the poll metrics fields of the snapshot.
func TestPollCounters(t *testing.T) {
	var fail atomic.Bool
	src := newLive(false)
	source := func(ctx context.Context, b string) (haproxy.BackendStats, error) {
		if fail.Load() {
			return haproxy.BackendStats{}, errors.New("boom")
		}
		return src.source(ctx, b)
	}
	p := mustNew(t, zerolog.Nop(), Config{Source: source, Backend: "api", Interval: 5 * time.Millisecond, Timeout: 2 * time.Millisecond,
		Policy: health.Policy{MinUp: health.Quorum{Count: 1}, Rise: 1, Fall: 1, StaleAfter: time.Second}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	start := time.Now()
	waitFor(t, "good polls", func() bool { return p.Snapshot().Polls >= 2 })
	if s := p.Snapshot(); s.PollErrors != 0 || s.LastPollAt.Before(start) || s.LastPollDuration < 0 {
		t.Errorf("after good polls: errors %d at %v took %v", s.PollErrors, s.LastPollAt, s.LastPollDuration)
	}
	fail.Store(true)
	waitFor(t, "failed polls counted", func() bool { return p.Snapshot().PollErrors >= 2 })
	if s := p.Snapshot(); s.PollErrors >= s.Polls || !s.HasServer("s1") {
		t.Errorf("errors %d of %d polls; HasServer(s1) %v", s.PollErrors, s.Polls, s.HasServer("s1"))
	}
}
