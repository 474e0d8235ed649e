package haproxy

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// runAgent starts an AgentServer with reply on 127.0.0.1:0; the returned
// stop cancels it and waits for Run, failing the test if Run took longer
// than limit to return.
func runAgent(t *testing.T, reply ReplyFunc, readTimeout time.Duration, maxConns int) (a *AgentServer, stop func(limit time.Duration)) {
	t.Helper()
	a = NewAgentServer(zerolog.New(zerolog.NewTestWriter(t)), reply, AgentConfig{Listen: "127.0.0.1:0", ReadTimeout: readTimeout})
	if maxConns > 0 {
		a.maxOpen = maxConns
		a.sem = make(chan struct{}, 2*maxConns)
	}
	if err := a.Bind(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func(limit time.Duration) {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(limit):
			t.Fatalf("Run did not return within %s of cancel", limit)
		}
	}
	t.Cleanup(func() { stop(5 * time.Second) })
	return a, stop
}

// ask sends req on a new connection (half-closing it if closeWrite) and
// returns everything the agent wrote before closing.
func ask(t *testing.T, addr net.Addr, req string, closeWrite bool) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read reply to %q: %v", req, err)
	}
	return string(out)
}

func TestAgentServerReplies(t *testing.T) {
	t.Parallel()
	reply := func(backend, server string) string {
		switch server {
		case "multi":
			return "50%\nup"
		case "boom":
			panic("reply bug")
		}
		return "backend=" + backend + " server=" + server
	}
	a, _ := runAgent(t, reply, 200*time.Millisecond, 0)
	tests := []struct {
		name       string
		req        string
		closeWrite bool
		want       string
	}{
		{"backend and server", "api/s1\n", false, "backend=api server=s1\n"},
		{"CRLF", "api/s1\r\n", false, "backend=api server=s1\n"},
		{"server only", "s1\n", false, "backend= server=s1\n"},
		{"data after the line is ignored", "api/s1\napi/s2\n", false, "backend=api server=s1\n"},
		{"line ended by EOF", "api/s3", true, "backend=api server=s3\n"},
		{"reply cut at its first newline", "api/multi\n", false, "50%\n"},
		{"panicking reply", "api/boom\n", false, "\n"},
		{"empty line", "\n", false, "\n"},
		{"bad name", "api/s 1\n", false, "\n"},
		{"too long", strings.Repeat("a", MaxAgentRequest+2), false, "\n"},
		{"nothing sent, EOF", "", true, "\n"},
		{"no newline until the read timeout", "api/s1", false, "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ask(t, a.Addr(), tt.req, tt.closeWrite); got != tt.want {
				t.Errorf("reply to %q = %q, want %q", tt.req, got, tt.want)
			}
		})
	}
}

func TestAgentServerConnLimitAndShutdown(t *testing.T) {
	t.Parallel()
	// A long read timeout: only shutdown can end the held connection.
	a, stop := runAgent(t, func(string, string) string { return "" }, time.Minute, 1)

	held, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	openConns := func() int { a.mu.Lock(); defer a.mu.Unlock(); return a.open.Len() }
	waitOpen := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for openConns() != n {
			if time.Now().After(deadline) {
				t.Fatalf("open connections %d, want %d", openConns(), n)
			}
			runtime.Gosched() // polling the server's own state, bounded above
		}
	}
	waitOpen(1) // the held connection is accepted before the next dial
	// The idle connection holds the only slot; a real check arriving now
	// cuts it (oldest first) and is answered, so idle connections can never
	// lock HAProxy out.
	extra, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := extra.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := extra.Write([]byte("api/s1\n")); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(extra)
	if err != nil || string(out) != "\n" {
		t.Errorf("check over the limit got %q (%v), want the reply", out, err)
	}
	if err := held.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if out, err := io.ReadAll(held); len(out) != 0 || (err != nil && !strings.Contains(err.Error(), "reset")) {
		t.Errorf("oldest idle connection not cut: got %q, %v", out, err)
	}
	// A second idle connection to hold the slot for the shutdown check.
	held2, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer held2.Close()
	held = held2
	waitOpen(1)

	// Shutdown cuts the held connection: Run returns long before the
	// one-minute read timeout.
	addr := a.Addr().String()
	start := time.Now()
	stop(2 * time.Second)
	t.Logf("Run returned %s after cancel", time.Since(start))
	if err := held.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(held); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("held connection not closed: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("listener still accepts after Run returned")
	}
}

func TestAgentServerMisuse(t *testing.T) {
	t.Parallel()
	a := NewAgentServer(zerolog.Nop(), func(string, string) string { return "" }, AgentConfig{Listen: "127.0.0.1:0"})
	if a.Addr() != nil {
		t.Errorf("Addr before Bind = %v, want nil", a.Addr())
	}
	if got := time.Duration(a.readTimeout.Load()); got != DefaultAgentReadTimeout {
		t.Errorf("readTimeout = %s, want %s", got, DefaultAgentReadTimeout)
	}
	if err := a.Bind(); err != nil {
		t.Fatal(err)
	}
	if err := a.Bind(); err == nil {
		t.Error("second Bind succeeded")
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := NewAgentServer(zerolog.Nop(), nil, AgentConfig{Listen: "127.0.0.1:-1"}).Bind(); err == nil || !strings.Contains(err.Error(), "127.0.0.1:-1") {
		t.Errorf("Bind on a bad address: %v, want an error naming it", err)
	}
}

// TestAgentServerReload: Apply changes the read timeout and moves the
// listener (the new address answers before the old one is closed); a
// Prepare that cannot bind changes nothing.
func TestAgentServerReload(t *testing.T) {
	t.Parallel()
	a, stop := runAgent(t, func(string, string) string { return "77%" }, 0, 0)
	defer stop(2 * time.Second)
	old := a.Addr()
	if got := ask(t, old, "api/s1\n", false); got != "77%\n" {
		t.Fatalf("before: %q", got)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := a.Prepare(AgentConfig{Listen: taken.Addr().String()}); err == nil {
		t.Error("Prepare on a taken address succeeded")
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free.Close()
	p, err := a.Prepare(AgentConfig{Listen: free.Addr().String(), ReadTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := ask(t, old, "api/s1\n", false); got != "77%\n" {
		t.Errorf("after Prepare, the old listener answered %q", got)
	}
	a.Apply(p)
	if got := time.Duration(a.readTimeout.Load()); got != 2*time.Second {
		t.Errorf("readTimeout after Apply = %s, want 2s", got)
	}
	if a.Addr().String() == old.String() {
		t.Fatal("listener did not move")
	}
	if got := ask(t, a.Addr(), "api/s1\n", false); got != "77%\n" {
		t.Errorf("new listener answered %q", got)
	}
	if c, err := net.Dial("tcp", old.String()); err == nil {
		c.Close()
		t.Error("old listener still accepts after Apply")
	}
}

// TestAgentLive runs HAProxy's real agent checks against our AgentServer
// and records what each reply does to `show stat` on HAProxy 2.6.
func TestAgentLive(t *testing.T) {
	t.Parallel()
	agent := startTestAgent(t)
	h := startHAProxy(t, haproxyOpts{agentPort: agent.port()})

	server := func(name, what string, cond func(Server) bool) Server {
		t.Helper()
		st := h.waitServer(t, name, what, cond)
		s, _ := findServer(st, name)
		return s
	}
	// checks waits for n more agent checks of api/name, then returns the
	// server as show stat sees it.
	checks := func(name string, n int) Server {
		t.Helper()
		key := "api/" + name
		target := agent.callCount(key) + n
		waitFor(t, 5*time.Second, key+" agent checks", func() (int, bool) {
			c := agent.callCount(key)
			return c, c >= target
		})
		s, _ := findServer(h.stat(t), name)
		return s
	}
	want := func(got Server, status string, weight int, usable bool, agentStatus string) {
		t.Helper()
		if got.Status != status || got.Weight != weight || got.Usable != usable || got.AgentStatus != agentStatus {
			t.Errorf("%s = status %q weight %d usable %v agent %q; want %q %d %v %q",
				got.Name, got.Status, got.Weight, got.Usable, got.AgentStatus, status, weight, usable, agentStatus)
		}
	}

	// Our default reply, AgentNoChange, leaves everything as configured.
	for _, name := range activeServers {
		want(checks(name, 2), "UP", 100, true, "CHECKED")
	}

	t.Run("weights", func(t *testing.T) {
		agent.set("api/s2", AgentWeight(50))
		want(server("s2", "weight 50", func(s Server) bool { return s.Weight == 50 }), "UP", 50, true, "CHECKED")
		agent.set("api/s3", AgentWeight(0))
		want(server("s3", "weight 0", func(s Server) bool { return s.Weight == 0 }), "UP", 0, false, "CHECKED")
		// An agent weight overrides an operator's weight at the next check.
		h.exec(t, "set server api/s2 weight 80")
		want(server("s2", "weight back to 50", func(s Server) bool { return s.Weight == 50 }), "UP", 50, true, "CHECKED")
		agent.set("api/s2", AgentWeight(100))
		agent.set("api/s3", AgentWeight(100))
		server("s3", "weight 100", func(s Server) bool { return s.Weight == 100 })
		server("s2", "weight 100", func(s Server) bool { return s.Weight == 100 })
	})

	t.Run("neutral replies keep operator weight and drain", func(t *testing.T) {
		h.exec(t, "set server api/s4 weight 30")
		h.exec(t, "set server api/s4 state drain")
		for _, reply := range []string{AgentNoChange, "# unknown server", "unknown-server"} {
			agent.set("api/s4", reply)
			want(checks("s4", 3), "DRAIN (agent)", 30, false, "CHECKED")
		}
		// "ready" cancels the operator's drain: never send it by default.
		agent.set("api/s4", AgentReady)
		want(server("s4", "drain canceled by ready", func(s Server) bool { return s.Status == "UP" }), "UP", 30, true, "CHECKED")
		agent.set("api/s4", AgentNoChange)
		h.exec(t, "set server api/s4 weight 100")
	})

	t.Run("ready cancels operator maint", func(t *testing.T) {
		h.exec(t, "set server api/s5 state maint")
		want(checks("s5", 3), "MAINT", 100, false, "CHECKED")
		agent.set("api/s5", AgentReady)
		server("s5", "maint canceled by ready", func(s Server) bool { return s.Status == "UP" })
		agent.set("api/s5", AgentNoChange)
	})

	t.Run("down, drain and maint stick until undone", func(t *testing.T) {
		agent.set("api/s1", AgentDown)
		server("s1", "DOWN (agent)", func(s Server) bool { return s.Status == "DOWN (agent)" })
		agent.set("api/s1", AgentNoChange)
		want(checks("s1", 3), "DOWN (agent)", 100, false, "CHECKED")
		agent.set("api/s1", AgentUp)
		want(server("s1", "up again", func(s Server) bool { return s.Status == "UP" }), "UP", 100, true, "L7OK")

		agent.set("api/s1", AgentDrain)
		server("s1", "agent drain", func(s Server) bool { return s.Status == "DRAIN (agent)" })
		agent.set("api/s1", AgentNoChange)
		want(checks("s1", 3), "DRAIN (agent)", 100, false, "CHECKED")

		agent.set("api/s1", AgentMaint)
		server("s1", "agent maint", func(s Server) bool { return s.Status == "MAINT" })
		agent.set("api/s1", AgentNoChange)
		want(checks("s1", 3), "MAINT", 100, false, "CHECKED")

		agent.set("api/s1", AgentReady)
		server("s1", "ready", func(s Server) bool { return s.Status == "UP" })
		agent.set("api/s1", AgentNoChange)
	})

	if st := h.waitUsable(t, 5); st.Active != 5 {
		t.Errorf("end: Active = %d, want 5", st.Active)
	}

	t.Run("agent gone keeps the last state", func(t *testing.T) {
		agent.set("api/s2", AgentWeight(50))
		server("s2", "weight 50", func(s Server) bool { return s.Weight == 50 })
		agent.stop()
		// Connection refused: agent_status L4CON, server untouched.
		want(server("s2", "agent L4CON", func(s Server) bool { return s.AgentStatus == "L4CON" }), "UP", 50, true, "L4CON")
		if st := h.stat(t); st.Usable != 5 {
			t.Errorf("Usable = %d after the agent went away, want 5", st.Usable)
		}
	})
}
