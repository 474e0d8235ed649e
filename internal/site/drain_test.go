package site

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
)

// live is a StatSource whose backend the test changes between polls.
type live struct {
	mu sync.Mutex
	st haproxy.BackendStats
}

func newLive(backup bool) *live {
	st := haproxy.BackendStats{Backend: "api", Algo: "roundrobin"}
	for i := 1; i <= 5; i++ {
		st.Servers = append(st.Servers, haproxy.Server{Name: fmt.Sprintf("s%d", i), Status: "UP", Weight: 100, Usable: true})
	}
	if backup {
		st.Servers = append(st.Servers, haproxy.Server{Name: "b1", Status: "UP", Weight: 100, Usable: true, Backup: true})
	}
	l := &live{st: st}
	l.recount()
	return l
}

// set changes one server under the lock.
func (l *live) set(name string, f func(*haproxy.Server)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Servers = slices.Clone(st.Servers)
	for i := range st.Servers {
		if st.Servers[i].Name == name {
			f(&st.Servers[i])
		}
	}
	l.st = st
	l.recount()
}

func (l *live) recount() {
	l.st.Usable, l.st.Total = 0, 0
	for _, s := range l.st.Servers {
		if !s.Backup {
			l.st.Total++
			if s.Usable {
				l.st.Usable++
			}
		}
	}
}

func (l *live) source(context.Context, string) (haproxy.BackendStats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st, nil
}

func drained(s *haproxy.Server) { s.Status, s.Usable = "DRAIN (agent)", false }
func upAgain(s *haproxy.Server) { s.Status, s.Usable = "UP", true }

// store records saved drain states; fail makes the next saves fail.
type store struct {
	mu    sync.Mutex
	saved []Drain
	fail  error
}

func (s *store) save(d Drain) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.saved = append(s.saved, d)
	return nil
}

func (s *store) last() Drain {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.saved) == 0 {
		return Drain{}
	}
	return s.saved[len(s.saved)-1]
}

// startPoller runs a poller polling src every 5 ms with rise and fall 1.
func startPoller(t *testing.T, src *live, cfg Config, onChange func(health.State)) (*Poller, *syncBuf) {
	t.Helper()
	cfg.Site, cfg.Backend, cfg.Interval, cfg.Timeout = "alpha", "api", 5*time.Millisecond, 2*time.Millisecond
	cfg.Policy = health.Policy{MinUp: health.Quorum{Count: 3}, Rise: 1, Fall: 1, StaleAfter: time.Second}
	var logs syncBuf
	cfg.Source = src.source
	p := mustNew(t, zerolog.New(&logs), cfg, onChange)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-p.Ready()
	return p, &logs
}

func replies(s *Snapshot, names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, n+"="+s.AgentReply("api", n))
	}
	return out
}

func TestDrainWithdrawsAtOnce(t *testing.T) {
	src, st := newLive(true), &store{}
	var mu sync.Mutex
	var changes []bool
	p, _ := startPoller(t, src, Config{SaveDrain: st.save}, func(s health.State) {
		mu.Lock()
		changes = append(changes, s.Serving)
		mu.Unlock()
	})
	waitFor(t, "serving", func() bool { return p.Snapshot().Health.Serving })
	d, err := p.Drain(context.Background(), "kernel upgrade")
	if err != nil {
		t.Fatal(err)
	}
	// Withdrawn when Drain returns, not at the next poll.
	snap := p.Snapshot()
	if snap.Health.Serving || snap.Health.Reason != "drained: kernel upgrade" || !snap.Drain.Active {
		t.Fatalf("after Drain: %+v drain %+v", snap.Health, snap.Drain)
	}
	if !d.Active || d.Reason != "kernel upgrade" || d.Servers != nil || !cmp.Equal(st.last(), d) {
		t.Errorf("Drain returned %+v, saved %+v", d, st.last())
	}
	// Without drain_servers the agent keeps advertising weights only.
	if got := replies(snap, "s1", "b1"); !cmp.Equal(got, []string{"s1=100%", "b1=100%"}) {
		t.Errorf("replies while drained: %v", got)
	}
	// Healthy polls do not undo a drain; a second Drain updates the reason.
	polls := snap.Polls
	waitFor(t, "more polls", func() bool { return p.Snapshot().Polls > polls+3 })
	if _, err := p.Drain(context.Background(), "still upgrading"); err != nil {
		t.Fatal(err)
	}
	if s := p.Snapshot(); s.Health.Serving || s.Drain.Reason != "still upgrading" || !s.Drain.Since.Equal(d.Since) {
		t.Errorf("after the second Drain: %+v %+v", s.Health, s.Drain)
	}
	r, err := p.Resume(context.Background())
	if err != nil || r.Active {
		t.Fatalf("Resume: %+v, %v", r, err)
	}
	waitFor(t, "serving again", func() bool { return p.Snapshot().Health.Serving })
	if s := p.Snapshot(); s.Health.Since.Before(r.Since) {
		t.Errorf("serving since %v, before the resume at %v", s.Health.Since, r.Since)
	}
	mu.Lock()
	defer mu.Unlock()
	if !cmp.Equal(changes, []bool{true, false, true}) {
		t.Errorf("changes %v, want [true false true]", changes)
	}
}

func TestDrainServers(t *testing.T) {
	src, st := newLive(true), &store{}
	src.set("s2", drained) // an operator's drain
	p, _ := startPoller(t, src, Config{SaveDrain: st.save, DrainServers: true}, nil)
	waitFor(t, "serving", func() bool { return p.Snapshot().Health.Serving })
	d, err := p.Drain(context.Background(), "move")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"s1", "s3", "s4", "s5"}
	if !cmp.Equal(d.Servers, want) || !cmp.Equal(st.last().Servers, want) {
		t.Fatalf("drained servers %v, saved %v, want %v", d.Servers, st.last().Servers, want)
	}
	if got := replies(p.Snapshot(), "s1", "s2", "b1"); !cmp.Equal(got, []string{"s1=drain", "s2=100%", "b1=100%"}) {
		t.Errorf("replies while drained: %v", got)
	}
	for _, n := range want {
		src.set(n, drained) // HAProxy applied our "drain"
	}
	if _, err := p.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	// "ready" only for the servers we drained, until HAProxy shows them
	// undrained; never for the operator's s2.
	if got := replies(p.Snapshot(), "s1", "s2"); !cmp.Equal(got, []string{"s1=ready", "s2=100%"}) {
		t.Errorf("replies after resume: %v", got)
	}
	src.set("s1", upAgain)
	src.set("s3", upAgain)
	waitFor(t, "s1 and s3 forgotten", func() bool { return cmp.Equal(p.Snapshot().Drain.Servers, []string{"s4", "s5"}) })
	if got := st.last().Servers; !cmp.Equal(got, []string{"s4", "s5"}) {
		t.Errorf("saved %v, want [s4 s5]", got)
	}
	src.set("s4", upAgain)
	src.set("s5", upAgain)
	waitFor(t, "all forgotten", func() bool { return len(p.Snapshot().Drain.Servers) == 0 })
	if got := replies(p.Snapshot(), "s1", "s2"); !cmp.Equal(got, []string{"s1=100%", "s2=100%"}) {
		t.Errorf("replies at the end: %v", got)
	}
	if last := st.last(); last.Active || last.Servers != nil {
		t.Errorf("saved at the end %+v", last)
	}
}

// TestDrainServersLeaveOperatorMaint: issue 15 finding 3. Our agent sends
// "drain" only until HAProxy shows the server drained (repeating it would
// turn an operator's maint back into a drain), and a server the operator
// puts in maintenance during the site drain is the operator's: it gets
// neither "drain" nor, on resume, "ready".
func TestDrainServersLeaveOperatorMaint(t *testing.T) {
	src, st := newLive(true), &store{}
	p, _ := startPoller(t, src, Config{SaveDrain: st.save, DrainServers: true}, nil)
	waitFor(t, "serving", func() bool { return p.Snapshot().Health.Serving })
	if _, err := p.Drain(context.Background(), "move"); err != nil {
		t.Fatal(err)
	}
	if got := replies(p.Snapshot(), "s1", "s3"); !cmp.Equal(got, []string{"s1=drain", "s3=drain"}) {
		t.Fatalf("replies before HAProxy applied the drain: %v", got)
	}
	for _, n := range []string{"s1", "s2", "s3", "s4", "s5"} {
		src.set(n, drained)
	}
	waitFor(t, "drains seen applied", func() bool {
		return cmp.Equal(replies(p.Snapshot(), "s1", "s3"), []string{"s1=", "s3="})
	})
	// The operator puts s3 in maintenance during the site drain.
	src.set("s3", func(s *haproxy.Server) { s.Status, s.Usable = "MAINT", false })
	waitFor(t, "s3 left to the operator", func() bool {
		return cmp.Equal(p.Snapshot().Drain.Servers, []string{"s1", "s2", "s4", "s5"})
	})
	if got := st.last().Servers; !cmp.Equal(got, []string{"s1", "s2", "s4", "s5"}) {
		t.Errorf("saved %v, want s3 left out", got)
	}
	if got := replies(p.Snapshot(), "s3"); !cmp.Equal(got, []string{"s3=100%"}) {
		t.Errorf("reply to the operator's server in maint: %v (a weight never changes maint)", got)
	}
	if _, err := p.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := replies(p.Snapshot(), "s1", "s3"); !cmp.Equal(got, []string{"s1=ready", "s3=100%"}) {
		t.Errorf("replies after resume: %v; want ready for ours only", got)
	}
}

func TestDrainServersNeedsBackup(t *testing.T) {
	p, _ := startPoller(t, newLive(false), Config{DrainServers: true}, nil)
	d, err := p.Drain(context.Background(), "no backup")
	if err != nil || !d.Active || len(d.Servers) != 0 {
		t.Errorf("Drain = %+v, %v; want active, no servers drained without a backup server", d, err)
	}
}

func TestDrainSaveFails(t *testing.T) {
	st := &store{fail: errors.New("write /var/lib/spdu-haproxy/state.json: no space left on device")}
	p, _ := startPoller(t, newLive(true), Config{SaveDrain: st.save, DrainServers: true}, nil)
	d, err := p.Drain(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "no space left on device (servers not drained)") {
		t.Errorf("Drain error %v", err)
	}
	if s := p.Snapshot(); s.Health.Serving || !d.Active || len(d.Servers) != 0 {
		t.Errorf("after a failed save: serving %v, drain %+v; want withdrawn, no server drained", s.Health.Serving, d)
	}
	if _, err := p.Resume(context.Background()); err == nil {
		t.Error("Resume with a failing save: no error")
	}
	if p.Snapshot().Drain.Active {
		t.Error("still drained after Resume")
	}
}

func TestDrainRestored(t *testing.T) {
	since := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	p, _ := startPoller(t, newLive(true), Config{Drain: Drain{Active: true, Reason: "before restart", Since: since, Servers: []string{"s1"}}}, nil)
	s := p.Snapshot()
	if s.Health.Serving || s.Health.Reason != "drained: before restart" || !s.Health.Since.Equal(since) {
		t.Errorf("restored: %+v", s.Health)
	}
	polls := s.Polls
	waitFor(t, "healthy polls", func() bool { return p.Snapshot().Polls > polls+5 })
	if s := p.Snapshot(); s.Health.Serving || s.AgentReply("api", "s1") != "drain" {
		t.Errorf("a restored drain served or forgot s1: %+v", s.Health)
	}
}

func TestDrainAfterStop(t *testing.T) {
	p := mustNew(t, zerolog.Nop(), Config{Source: newLive(true).source, Interval: time.Millisecond, Timeout: time.Millisecond / 2,
		Policy: health.Policy{Rise: 1, Fall: 1, StaleAfter: time.Second}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Drain(context.Background(), "x"); !errors.Is(err, ErrStopped) {
		t.Errorf("Drain after Run returned: %v, want ErrStopped", err)
	}
}

// TestCleanReason: issue 15 item 7. A drain reason loses control
// characters and stays within MaxReasonLen bytes, cut at a character
// boundary.
func TestCleanReason(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes
	for _, c := range []struct{ in, want string }{
		{"kernel upgrade", "kernel upgrade"},
		{"line\nbreak\r\x1b[31mred\x1b[0m\ttab", "line break  [31mred [0m tab"},
		{"\x00\x07 padded \u2028", "padded"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{long, strings.Repeat("é", 128)},
	} {
		got := CleanReason(c.in)
		if got != c.want {
			t.Errorf("CleanReason(%q) = %q, want %q", c.in, got, c.want)
		}
		if len(got) > MaxReasonLen || !utf8.ValidString(got) {
			t.Errorf("CleanReason(%q) = %d bytes, valid %v", c.in, len(got), utf8.ValidString(got))
		}
	}
	// Through the poller: a megabyte reason is stored cut.
	src, st := newLive(false), &store{}
	p, _ := startPoller(t, src, Config{SaveDrain: st.save}, nil)
	d, err := p.Drain(context.Background(), strings.Repeat("x", 1<<20)+"\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Reason) != MaxReasonLen || len(st.last().Reason) != MaxReasonLen || len(p.Snapshot().Health.Reason) > MaxReasonLen+len("drained: ") {
		t.Errorf("a 1 MiB reason kept as %d bytes (saved %d)", len(d.Reason), len(st.last().Reason))
	}
}
