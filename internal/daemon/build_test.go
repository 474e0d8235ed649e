package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// TestPolledFrontend: drain -wait sees the frontend row of the last poll,
// never the older one a failed poll leaves in the snapshot.
func TestPolledFrontend(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	www := &haproxy.FrontendStats{Frontend: "www", Scur: 3}
	for _, c := range []struct {
		name string
		snap site.Snapshot
		want string // error text, "" for the row
	}{
		{"not polled", site.Snapshot{}, "not polled yet"},
		{"good poll", site.Snapshot{Polls: 2, LastPollAt: t0, Health: health.State{LastGood: t0}, Stats: haproxy.BackendStats{Frontend: www}}, ""},
		{"failed poll", site.Snapshot{Polls: 3, LastPollAt: t0.Add(time.Second), Health: health.State{LastGood: t0, LastError: "timeout"},
			Stats: haproxy.BackendStats{Frontend: www}}, "last poll failed: timeout"},
		{"other frontend", site.Snapshot{Polls: 2, LastPollAt: t0, Health: health.State{LastGood: t0},
			Stats: haproxy.BackendStats{Frontend: &haproxy.FrontendStats{Frontend: "other"}}}, "not in the last poll"},
	} {
		got, err := polledFrontend(&c.snap, "www")
		switch {
		case c.want == "" && (err != nil || got != *www):
			t.Errorf("%s: %+v, %v; want the polled row", c.name, got, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}
