package site

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/shed"
)

// shedStore records saved manual sheds.
type shedStore struct {
	mu    sync.Mutex
	saved []Shed
}

func (s *shedStore) save(sh Shed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saved = append(s.saved, sh)
	return nil
}

func (s *shedStore) last() (Shed, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.saved) == 0 {
		return Shed{}, 0
	}
	return s.saved[len(s.saved)-1], len(s.saved)
}

// TestManualShed checks `spdu-haproxy shed` at the poller: the fraction is
// in force at once, saved before it is published, lowers the spare
// capacity the site offers, is logged once with its reason, and `shed off`
// ends it.
func TestManualShed(t *testing.T) {
	var st shedStore
	p, logs := startPoller(t, newLive(false), Config{SaveShed: st.save}, nil)
	if _, err := p.SetShed(context.Background(), 1.5, time.Time{}, "x"); err == nil {
		t.Error("SetShed(1.5) succeeded; want an error")
	}
	got, err := p.SetShed(context.Background(), 0.5, time.Time{}, "risky\ndeploy")
	if err != nil {
		t.Fatal(err)
	}
	if saved, _ := st.last(); saved != got || got.Reason != "risky deploy" || got.Since.IsZero() {
		t.Errorf("SetShed returned %+v, saved %+v; want the same, reason cleaned, Since set", got, saved)
	}
	s := p.Snapshot()
	if s.Load.Shed != 0.5 || s.Load.Manual != got || s.Load.Auto != 0 {
		t.Errorf("Load %+v; want shed 0.5 from the manual floor", s.Load)
	}
	if s.SpareCapacity() != 0.5 || s.Capacity() != 0.5 {
		t.Errorf("SpareCapacity %v Capacity %v with every server up and half shed; want 0.5", s.SpareCapacity(), s.Capacity())
	}
	polls := s.Polls
	waitFor(t, "more polls", func() bool { return p.Snapshot().Polls > polls+5 })
	if p.Snapshot().Load.Shed != 0.5 {
		t.Errorf("shed %v after more polls; want it to stay 0.5", p.Snapshot().Load.Shed)
	}
	if n := strings.Count(logs.String(), `"message":"shedding load"`); n != 1 || !strings.Contains(logs.String(), `"reason":"manual: risky deploy"`) {
		t.Errorf("%d \"shedding load\" logs; want one with the manual reason:\n%s", n, logs)
	}
	if _, err := p.SetShed(context.Background(), 0, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	if s := p.Snapshot(); s.Load.Shed != 0 || s.SpareCapacity() != 1 {
		t.Errorf("after shed off: Load %+v, SpareCapacity %v", s.Load, s.SpareCapacity())
	}
	if saved, _ := st.last(); saved != (Shed{}) {
		t.Errorf("saved %+v after shed off; want the zero Shed", saved)
	}
	if !strings.Contains(logs.String(), `"message":"shedding stopped"`) {
		t.Errorf("no \"shedding stopped\" log:\n%s", logs)
	}
}

// TestManualShedExpires checks that a shed with -for ends by itself, and
// that the end is saved, so a restart does not bring it back.
func TestManualShedExpires(t *testing.T) {
	var st shedStore
	p, logs := startPoller(t, newLive(false), Config{SaveShed: st.save}, nil)
	if _, err := p.SetShed(context.Background(), 0.3, time.Now().Add(100*time.Millisecond), "short"); err != nil {
		t.Fatal(err)
	}
	if p.Snapshot().Load.Shed != 0.3 {
		t.Fatalf("shed %v; want 0.3", p.Snapshot().Load.Shed)
	}
	waitFor(t, "the shed to expire", func() bool { return p.Snapshot().Load.Shed == 0 })
	if saved, n := st.last(); saved != (Shed{}) || n != 2 {
		t.Errorf("saves: %d, last %+v; want the expiry saved as the zero Shed", n, saved)
	}
	if !strings.Contains(logs.String(), `"message":"manual shed expired"`) {
		t.Errorf("no \"manual shed expired\" log:\n%s", logs)
	}
}

// TestManualShedRestored checks that a shed from the state file is in
// force from the first snapshot, and that one that expired while the
// daemon was down is dropped at the first poll.
func TestManualShedRestored(t *testing.T) {
	since := time.Now().Add(-time.Hour)
	keep := Shed{Fraction: 0.4, Reason: "before restart", Since: since, Until: time.Now().Add(time.Hour)}
	p, _ := startPoller(t, newLive(false), Config{ManualShed: keep}, nil)
	if l := p.Snapshot().Load; l.Shed != 0.4 || l.Manual != keep {
		t.Errorf("restored Load %+v; want the saved shed in force", l)
	}
	var st shedStore
	old := Shed{Fraction: 0.4, Reason: "long gone", Since: since, Until: since.Add(time.Minute)}
	p, _ = startPoller(t, newLive(false), Config{ManualShed: old, SaveShed: st.save}, nil)
	waitFor(t, "the expired shed to be dropped", func() bool { return p.Snapshot().Load.Shed == 0 })
	if saved, n := st.last(); n != 1 || saved != (Shed{}) {
		t.Errorf("saves %d, last %+v; want the expiry saved", n, saved)
	}
}

// TestAutoShed runs the controller on live counters: with every server at
// its maxconn and requests queued the fraction rises, no faster than
// max_step per second; the operator's floor holds it up when the load
// goes; and with the load gone and no floor it falls back to 0.
func TestAutoShed(t *testing.T) {
	src := newLive(false)
	load := func(scur, qcur int) {
		for _, n := range []string{"s1", "s2", "s3", "s4", "s5"} {
			src.set(n, func(s *haproxy.Server) { s.Scur, s.Slim, s.Qcur = scur, 10, qcur })
		}
	}
	load(10, 5) // u = 1 + 25/50 = 1.5
	cfg := shed.Config{Target: 0.8, MaxStep: 0.5, Gain: 1, Deadband: 0.05}
	start := time.Now()
	p, logs := startPoller(t, src, Config{AutoShed: &cfg}, nil)
	waitFor(t, "shedding to reach 0.4", func() bool { return p.Snapshot().Load.Shed >= 0.4 })
	took := time.Since(start).Seconds()
	if l := p.Snapshot().Load; l.Utilization != 1.5 || l.Signal != "queue" || l.Auto != l.Shed || l.Average <= 0.8 {
		t.Errorf("Load %+v; want utilization 1.5 from the queue, the controller's fraction in force", l)
	}
	// Each Update moves at most MaxStep x its Δt, so 0.4 takes at least
	// 0.8 s of polls whatever the gain.
	if took < 0.4/cfg.MaxStep {
		t.Errorf("reached 0.4 in %.2fs; max_step %.1f/s allows no less than %.1fs", took, cfg.MaxStep, 0.4/cfg.MaxStep)
	}
	if !strings.Contains(logs.String(), `"reason":"utilization 1.50 (queue), average `) {
		t.Errorf("no \"shedding load\" log with the utilization reason:\n%s", logs)
	}
	if _, err := p.SetShed(context.Background(), 0.3, time.Time{}, "floor"); err != nil {
		t.Fatal(err)
	}
	load(1, 0) // u = 0.1
	waitFor(t, "the controller to fall to 0", func() bool { return p.Snapshot().Load.Auto == 0 })
	if l := p.Snapshot().Load; l.Shed != 0.3 {
		t.Errorf("Load %+v with the load gone; want the manual floor 0.3 in force", l)
	}
	if _, err := p.SetShed(context.Background(), 0, time.Time{}, ""); err != nil {
		t.Fatal(err)
	}
	if l := p.Snapshot().Load; l.Shed != 0 {
		t.Errorf("Load %+v after shed off with the load gone; want 0", l)
	}
}
