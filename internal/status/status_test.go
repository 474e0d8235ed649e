package status

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/site"
)

func TestPeerCapacity(t *testing.T) {
	for in, want := range map[string]float64{
		// Version 0 (daemons before the version field): usable / total.
		`{"serving":true,"usable":3,"total":5}`:  0.6,
		`{"serving":true,"usable":0,"total":5}`:  0,
		`{"serving":false,"usable":5,"total":5}`: 0,
		`{"serving":true,"usable":7,"total":5}`:  1,
		`{"serving":true,"usable":0,"total":0}`:  0,
		// Version 1: the published capacity, whatever the counts say.
		`{"version":1,"site":"beta","serving":true,"capacity":0.25}`:                      0.25,
		`{"version":1,"site":"beta","serving":true,"capacity":0.25,"usable":5,"total":5}`: 0.25,
		`{"version":1,"site":"beta","serving":false,"capacity":0.9}`:                      0,
		`{"version":2,"site":"beta","serving":true,"capacity":1.5,"something":"new"}`:     1,
		`{"version":1,"site":"beta","serving":true,"capacity":-0.5}`:                      0,
	} {
		got, err := PeerCapacity([]byte(in))
		if err != nil || got != want {
			t.Errorf("PeerCapacity(%s) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{`{}`, `[]`, `{"serving":true}`, `x`, `{"version":1,"serving":true}`} {
		if _, err := PeerCapacity([]byte(bad)); err == nil {
			t.Errorf("PeerCapacity(%s) accepted", bad)
		}
	}
}

// TestBuildAndPublic: the full document carries the details and agrees
// with the agent's replies; the public form is exactly the four fields
// peers need, and peers read it back.
func TestBuildAndPublic(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	snap := &site.Snapshot{
		Health: health.State{Serving: true, Usable: 4, Total: 5, Required: 3, Reason: "quorum met", Since: t0, LastGood: t0,
			LastError: ""},
		Stats: haproxy.BackendStats{Backend: "api", Algo: "roundrobin", Servers: []haproxy.Server{
			{Name: "s1", Status: "UP", Weight: 100, Usable: true},
			{Name: "b1", Status: "UP", Weight: 1, Usable: true, Backup: true},
		}},
		Weights: map[string]int{"s1": 60},
		Drain:   site.Drain{Reason: "none"},
	}
	doc := Build(Input{Site: "alpha", Zone: "pool.domain.tld.", AgentMode: config.AgentAdaptive, DNSServing: true, Serial: 7}, snap)
	if doc.Version != Version || doc.Capacity != 0.8 || !doc.Serving || doc.Detail == nil || doc.Serial != 7 {
		t.Fatalf("document %+v", doc)
	}
	full, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"zone":"pool.domain.tld."`, `"usable":4`, `"agent_mode":"adaptive"`, `"version":1`} {
		if !strings.Contains(string(full), want) {
			t.Errorf("full document lacks %s: %s", want, full)
		}
	}
	pub, err := json.Marshal(doc.Public())
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(pub, &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"version": 1.0, "site": "alpha", "serving": true, "capacity": 0.8}
	if d := cmp.Diff(want, fields); d != "" {
		t.Errorf("public document (-want +got):\n%s", d)
	}
	if c, err := PeerCapacity(pub); err != nil || c != 0.8 {
		t.Errorf("a peer reads capacity %v, %v from the public document; want 0.8", c, err)
	}
	// A withdrawn site offers nothing.
	snap.Health.Serving = false
	if c := Build(Input{Site: "alpha"}, snap).Capacity; c != 0 {
		t.Errorf("withdrawn capacity %v, want 0", c)
	}
}

// TestBuildAgreesWithAgent: the status never disagrees with the agent
// (issue 15 item 9): for each server of a real poller's snapshot, the
// document shows the very line the agent answers and the weight it sets.
// A drained site's servers are answered "drain" (advertised 0), a server
// whose drain has ended "ready" until HAProxy shows it undrained.
func TestBuildAgreesWithAgent(t *testing.T) {
	stats := haproxy.BackendStats{Backend: "api", Servers: []haproxy.Server{
		{Name: "s1", Status: "UP", Weight: 100, Usable: true},
		{Name: "s2", Status: "DRAIN", Weight: 0},
		{Name: "b1", Status: "UP", Weight: 1, Usable: true, Backup: true},
	}}
	for _, c := range []struct {
		name  string
		drain site.Drain
		want  map[string]Server // name -> AgentReply and Advertised
	}{
		{"serving", site.Drain{}, map[string]Server{
			"s1": {AgentReply: "100%", Advertised: 100}, "s2": {AgentReply: "100%", Advertised: 100}, "b1": {AgentReply: "100%", Advertised: 100}}},
		{"drained", site.Drain{Active: true, Reason: "maintenance", Servers: []string{"b1", "s1"}}, map[string]Server{
			"s1": {AgentReply: "drain", Advertised: 0}, "s2": {AgentReply: "100%", Advertised: 100}, "b1": {AgentReply: "drain", Advertised: 0}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := site.New(zerolog.Nop(), site.Config{
				Source:  func(context.Context, string) (haproxy.BackendStats, error) { return stats, nil },
				Backend: "api", Interval: time.Hour, Timeout: time.Second,
				Policy: health.Policy{MinUp: health.Quorum{Count: 1}, Rise: 1, Fall: 1, StaleAfter: time.Hour},
				Drain:  c.drain, DrainServers: true,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			defer func() { cancel(); <-done }()
			select {
			case <-p.Ready():
			case <-time.After(5 * time.Second):
				t.Fatal("no poll within 5 s")
			}
			snap := p.Snapshot()
			doc := Build(Input{Site: "alpha", AgentMode: config.AgentStatic}, snap)
			for _, s := range doc.Detail.Servers {
				w := c.want[s.Name]
				if reply := snap.AgentReply("", s.Name); s.AgentReply != reply || s.AgentReply != w.AgentReply || s.Advertised != w.Advertised {
					t.Errorf("%s: status shows reply %q advertising %d; the agent answers %q; want %q advertising %d",
						s.Name, s.AgentReply, s.Advertised, reply, w.AgentReply, w.Advertised)
				}
			}
		})
	}
}
