package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

var ev = Event{Site: "alpha", Kind: "site", State: "withdrawn", Reason: "below quorum", Usable: 2, Total: 5,
	Time: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}

func start(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }() //nolint:errcheck // always nil
	t.Cleanup(func() { cancel(); <-done })
}

// TestExecGetsEnvAndJSON runs a real shell script that records its
// environment and standard input.
func TestExecGetsEnvAndJSON(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	body := "#!/bin/sh\n{ echo \"$SPDU_SITE $SPDU_KIND $SPDU_STATE $SPDU_USABLE/$SPDU_TOTAL $SPDU_TIME $SPDU_REASON\"; cat; } > " + out + ".tmp && mv " + out + ".tmp " + out + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	n := New(zerolog.Nop(), Config{Exec: []string{script}, Timeout: 5 * time.Second})
	start(t, n)
	if !n.Notify(ev) {
		t.Fatal("Notify dropped the event")
	}
	var got []byte
	testenv.Eventually(t, 5*time.Second, "the command ran", func() bool {
		var err error
		got, err = os.ReadFile(out)
		return err == nil
	})
	line, js, _ := strings.Cut(string(got), "\n")
	if want := "alpha site withdrawn 2/5 2026-11-24T12:00:00Z below quorum"; line != want {
		t.Errorf("environment line %q, want %q", line, want)
	}
	var back Event
	if err := json.Unmarshal([]byte(js), &back); err != nil || back != ev {
		t.Errorf("stdin JSON %q decoded to %+v (%v), want %+v", js, back, err, ev)
	}
}

// TestSlowCommandNeverBlocks: a command that hangs is killed at its timeout,
// and Notify keeps returning at once meanwhile.
func TestSlowCommandNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "slow.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 30\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	w := zerolog.SyncWriter(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) }))
	n := New(zerolog.New(w), Config{Exec: []string{script}, Timeout: 300 * time.Millisecond})
	start(t, n)
	begin := time.Now()
	accepted := 0
	for range QueueSize + 10 {
		if n.Notify(ev) {
			accepted++
		}
	}
	if d := time.Since(begin); d > 500*time.Millisecond {
		t.Errorf("%d Notify calls took %s with a hung command", QueueSize+10, d)
	}
	if accepted < QueueSize || accepted > QueueSize+1 {
		t.Errorf("accepted %d events, want the queue size %d (+1 in delivery)", accepted, QueueSize)
	}
	testenv.Eventually(t, 5*time.Second, "timeout logged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "timed out after 300ms")
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestWebhook(t *testing.T) {
	got := make(chan Event, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var e Event
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &e) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got <- e
	}))
	defer srv.Close()
	n := New(zerolog.Nop(), Config{Webhook: srv.URL + "/hook", Timeout: 2 * time.Second})
	start(t, n)
	n.Notify(ev)
	select {
	case e := <-got:
		if e != ev {
			t.Errorf("webhook got %+v, want %+v", e, ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("webhook not called")
	}
}

func TestDisabledDropsEvents(t *testing.T) {
	n := New(zerolog.Nop(), Config{Timeout: time.Second})
	if n.Enabled() || n.Notify(ev) {
		t.Error("a notifier without exec or webhook accepted an event")
	}
}
