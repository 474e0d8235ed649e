package daemon_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/control"
	"github.com/spdu/spdu-haproxy/internal/daemon"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// running is a daemon started in this process by startDaemon.
type running struct {
	*daemon.Daemon
	cancel context.CancelFunc
	done   chan error
}

// startDaemon is the one way tests start the daemon in process: New and Run
// with cfg, as cmd/spdu-haproxy does, logging to the test. It is stopped
// at cleanup (or by stop), failing the test if Run returns an error or
// takes more than 5 s.
func startDaemon(t testing.TB, cfg *config.Config, opts ...func(*daemon.Options)) *running {
	t.Helper()
	o := daemon.Options{Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), Version: "test"}
	for _, f := range opts {
		f(&o)
	}
	d, err := daemon.New(cfg, o)
	if err != nil {
		t.Fatalf("daemon.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Daemon: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the daemon and waits for Run; stopping twice is fine.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancellation")
	}
}

// status asks the daemon's control socket for its status document.
func status(t testing.TB, socket string) control.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := control.Call(ctx, socket, control.Request{Cmd: control.CmdStatus})
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return resp
}

// TestSiteEndToEnd runs the daemon in process against a real HAProxy and
// five real backends, and checks the whole main path: withdrawn at start,
// served once healthy, withdrawn when backends fall below min_up, back when
// they return, withdrawn when HAProxy dies, back when it restarts; and that
// HAProxy applies our agent-check replies.
func TestSiteEndToEnd(t *testing.T) {
	// HAProxy checks every 100 ms and marks a server down after one failed
	// check; the daemon polls every 100 ms.
	const checkInter, pollInterval, staleAfter, rise, fall = 100 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond, 2, 2
	s := testenv.StartSite(t, testenv.SiteOpts{Daemon: testenv.DaemonConfig{API: []string{"127.0.0.1", "2001:db8::1"}}})
	startDaemon(t, s.Config.Parse(t))
	query := func() int { return testenv.Rcode(s.DNSAddr) }

	// Start-up: REFUSED until rise good polls, then the A record.
	testenv.Eventually(t, 5*time.Second, "daemon answers the zone", func() bool { return query() >= 0 })
	took := testenv.Eventually(t, 5*time.Second, "zone served after start-up", func() bool { return query() == dns.RcodeSuccess })
	t.Logf("served %s after the DNS listener answered", took)

	// Our agent's effect: a runtime weight change is undone by the agent's
	// "100%" within a few agent intervals, on every server (nothing else in
	// this HAProxy changes weights). A weight-only reply shows in show stat
	// as agent_status CHECKED, "No status change".
	for _, be := range s.Backends {
		if _, err := s.HAProxy.Command("set server api/" + be.Name + " weight 37"); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 3*time.Second, "agent restores weight 100 on every server", func() bool {
		last := s.HAProxy.ShowStat(t, "api")
		for _, be := range s.Backends {
			if r := last[be.Name]; r["weight"] != "100" || r["agent_status"] != "CHECKED" {
				return false
			}
		}
		return true
	})

	// Three of five backends stop: below min_up 3.
	for _, be := range s.Backends[:3] {
		be.Stop()
	}
	limit := checkInter*2 + fall*pollInterval + pollInterval + 300*time.Millisecond
	took = testenv.Eventually(t, limit, "REFUSED after 3 backends stop", func() bool { return query() == dns.RcodeRefused })
	t.Logf("backends stopped -> first REFUSED: %s (bound %s)", took, limit)

	for _, be := range s.Backends[:3] {
		be.Start(t)
	}
	limit = checkInter*2 + rise*pollInterval + pollInterval + 300*time.Millisecond
	took = testenv.Eventually(t, limit, "answers return after backends restart", func() bool { return query() == dns.RcodeSuccess })
	t.Logf("backends restarted -> first answer: %s (bound %s)", took, limit)

	// HAProxy killed: withdrawn once the last good poll is stale_after old.
	s.HAProxy.Kill()
	limit = staleAfter + pollInterval + 200*time.Millisecond
	took = testenv.Eventually(t, limit, "REFUSED after HAProxy dies", func() bool { return query() == dns.RcodeRefused })
	t.Logf("HAProxy killed -> first REFUSED: %s (bound %s)", took, limit)

	s.HAProxy.Restart(t)
	testenv.Eventually(t, 5*time.Second, "served again after HAProxy restarts", func() bool { return query() == dns.RcodeSuccess })
}

// TestLongServerName: issue 15 item 9. A server name of 300 characters,
// which HAProxy accepts, gets its weight from our agent like any other: an
// operator's weight is set back to 100%.
func TestLongServerName(t *testing.T) {
	bs := testenv.StartBackends(t, 3)
	bs[0].Name = strings.Repeat("long-name.", 30)
	s := testenv.StartSite(t, testenv.SiteOpts{HAProxy: testenv.SiteHAProxy{Backends: bs}, Daemon: testenv.DaemonConfig{MinUp: 1}})
	startDaemon(t, s.Config.Parse(t))
	if _, err := s.HAProxy.Command("set server api/" + bs[0].Name + " weight 37"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the agent's 100% applied to the long-named server", func() bool {
		r := s.HAProxy.ShowStat(t, "api")[bs[0].Name]
		return r["weight"] == "100" && r["agent_status"] == "CHECKED"
	})
}

// startDrainSite starts a site with a backup server and an in-process
// daemon with agent.drain_servers, and waits until it serves the zone.
func startDrainSite(t *testing.T) (*testenv.Site, *config.Config, *running) {
	t.Helper()
	backup := testenv.StartBackends(t, 1)[0]
	s := testenv.StartSite(t, testenv.SiteOpts{HAProxy: testenv.SiteHAProxy{Backup: backup.Addr},
		Daemon: testenv.DaemonConfig{Agent: "drain_servers = true"}})
	cfg := s.Config.Parse(t)
	d := startDaemon(t, cfg)
	testenv.Eventually(t, 5*time.Second, "zone served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	return s, cfg, d
}

// TestDrainSurvivesRestart drains a real site with drain_servers, restarts
// the daemon, and resumes: the zone is withdrawn at once and stays
// withdrawn across the restart; our agent drains the servers it may and
// undoes exactly those on resume, never an operator's drain.
func TestDrainSurvivesRestart(t *testing.T) {
	s, cfg, d := startDrainSite(t)
	// An operator drains s2 by hand before the site drain.
	if _, err := s.HAProxy.Command("set server api/s2 state drain"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*time.Second, "s2 drained by the operator", func() bool {
		return d.Poller().Snapshot().Stats.Servers[1].Status == "DRAIN (agent)"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := control.Call(ctx, cfg.Control.Socket, control.Request{Cmd: control.CmdDrain, Reason: "kernel upgrade"}); err != nil {
		t.Fatalf("drain: %v", err)
	}
	// At once: the first query after the command returns is refused.
	if rc := testenv.Rcode(s.DNSAddr); rc != dns.RcodeRefused {
		t.Errorf("first query after drain: rcode %d, want REFUSED", rc)
	}
	ours := []string{"s1", "s3", "s4", "s5"}
	testenv.Eventually(t, 3*time.Second, "our agent drained s1 s3 s4 s5", func() bool {
		st := s.HAProxy.ShowStat(t, "api")
		for _, n := range ours {
			if st[n]["status"] != "DRAIN (agent)" {
				return false
			}
		}
		return true
	})

	// Restart during maintenance: still withdrawn, for many polls.
	d.stop(t)
	d = startDaemon(t, cfg)
	testenv.Eventually(t, 3*time.Second, "restarted daemon polls", func() bool { return d.Poller().Snapshot().Polls > 10 })
	if rc := testenv.Rcode(s.DNSAddr); rc != dns.RcodeRefused {
		t.Fatalf("after restart: rcode %d, want REFUSED", rc)
	}
	var out strings.Builder
	status(t, cfg.Control.Socket).Status.WriteText(&out)
	// Our drains are applied, so the agent sends nothing more for them
	// (an empty reply): repeating "drain" would undo an operator's maint.
	for _, want := range []string{"site alpha: WITHDRAWN", `drain: ACTIVE since`, `reason "kernel upgrade"`, "servers drained by our agent: s1 s3 s4 s5", `""`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}

	if _, err := control.Call(ctx, cfg.Control.Socket, control.Request{Cmd: control.CmdResume}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	took := testenv.Eventually(t, 5*time.Second, "zone served after resume", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	t.Logf("resume -> zone served: %s", took)
	testenv.Eventually(t, 3*time.Second, "our drains undone and forgotten", func() bool {
		return len(d.Poller().Snapshot().Drain.Servers) == 0
	})
	want := map[string]string{"s1": "UP", "s2": "DRAIN (agent)", "s3": "UP", "s4": "UP", "s5": "UP", "b1": "UP", "BACKEND": "UP"}
	got := map[string]string{}
	for name, row := range s.HAProxy.ShowStat(t, "api") {
		got[name] = row["status"]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after resume (-want +got):\n%s", diff)
	}
	if sd, _, err := control.NewStore(cfg.Control.StateFile, nil).Load(); err != nil || sd.Active || len(sd.Servers) != 0 {
		t.Errorf("state file after resume: %+v, %v", sd, err)
	}
}

// TestDrainLeavesOperatorMaint: issue 15 finding 3, against a real
// HAProxy. During a site drain with drain_servers, an operator puts s3 in
// maintenance: it stays in maintenance through several agent checks and
// through resume, while our own drains are undone.
func TestDrainLeavesOperatorMaint(t *testing.T) {
	s, cfg, d := startDrainSite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := control.Call(ctx, cfg.Control.Socket, control.Request{Cmd: control.CmdDrain, Reason: "rack move"}); err != nil {
		t.Fatal(err)
	}
	statusOf := func(name string) string { return s.HAProxy.ShowStat(t, "api")[name]["status"] }
	testenv.Eventually(t, 3*time.Second, "every server drained by our agent", func() bool {
		for _, be := range s.Backends {
			if statusOf(be.Name) != "DRAIN (agent)" {
				return false
			}
		}
		return true
	})
	if _, err := s.HAProxy.Command("set server api/s3 state maint"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*time.Second, "s3 left to the operator", func() bool {
		return !slices.Contains(d.Poller().Snapshot().Drain.Servers, "s3")
	})
	// Ten agent intervals (100 ms each): s3 stays in maintenance.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if st := statusOf("s3"); st != "MAINT" {
			t.Fatalf("s3 is %q after the operator's maint, during the drain; want MAINT", st)
		}
	}
	if _, err := control.Call(ctx, cfg.Control.Socket, control.Request{Cmd: control.CmdResume}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*time.Second, "our drains undone", func() bool {
		return statusOf("s1") == "UP" && statusOf("s5") == "UP"
	})
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if st := statusOf("s3"); st != "MAINT" {
			t.Fatalf("s3 is %q after resume; want the operator's MAINT", st)
		}
	}
}

// TestDrainWait: drain -wait fails while clients keep coming, and returns
// once they stop and the frontend stays quiet for control.quiet_period.
func TestDrainWait(t *testing.T) {
	s := testenv.StartSite(t, testenv.SiteOpts{Daemon: testenv.DaemonConfig{Frontend: "www", Control: `quiet_period = "500ms"`}})
	cfg := s.Config.Parse(t)
	startDaemon(t, cfg)
	testenv.Eventually(t, 5*time.Second, "zone served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	drain := func(wait time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), wait+5*time.Second)
		defer cancel()
		_, err := control.Call(ctx, cfg.Control.Socket, control.Request{Cmd: control.CmdDrain, Reason: "move", Wait: wait})
		return err
	}

	tr := testenv.StartTraffic("http://"+s.HTTPAddr+"/", 50)
	defer tr.Stop()
	start := time.Now()
	if err := drain(1500 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "not quiet for 500ms within 1.5s: frontend www still busy") {
		t.Errorf("drain -wait under traffic: %v", err)
	}
	if took := time.Since(start); took < 1500*time.Millisecond || took > 4*time.Second {
		t.Errorf("drain -wait under traffic failed after %s, want about 1.5s", took)
	}
	if rc := testenv.Rcode(s.DNSAddr); rc != dns.RcodeRefused {
		t.Errorf("a timed-out drain -wait left the zone served: rcode %d", rc)
	}

	got := make(chan error, 1)
	go func() { got <- drain(20 * time.Second) }()
	// Give the wait a busy reading first, then stop the clients.
	testenv.Eventually(t, 3*time.Second, "frontend busy", func() bool { return s.HAProxy.ShowStat(t, "www")["FRONTEND"]["rate"] != "0" })
	tr.Stop()
	stopped := time.Now()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("drain -wait after traffic stopped: %v", err)
		}
		// HAProxy's rate covers the last second, then the quiet period.
		took := time.Since(stopped)
		t.Logf("traffic stopped -> drain -wait returned: %s", took)
		if took < cfg.Control.QuietPeriod.Duration {
			t.Errorf("returned %s after traffic stopped, before the quiet period", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain -wait did not return within 10s of traffic stopping")
	}
}

// TestReload: a reload applies what changed (TTL, agent mode, a moved agent
// listener) with the site kept serving; a reload that cannot be prepared
// (an agent or DNS address in use, an unreadable cookie secret) changes
// nothing, not even the parts it prepared before failing; a
// restart-only key keeps its running value.
func TestReload(t *testing.T) {
	s := testenv.StartSite(t, testenv.SiteOpts{})
	d := startDaemon(t, s.Config.Parse(t))
	testenv.Eventually(t, 5*time.Second, "zone served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	ttl := func() uint32 {
		m := new(dns.Msg)
		m.SetQuestion("api.pool.domain.tld.", dns.TypeA)
		r, err := dns.Exchange(m, s.DNSAddr)
		if err != nil || len(r.Answer) == 0 {
			t.Fatalf("query: %v %v", r, err)
		}
		return r.Answer[0].Header().Ttl
	}
	reload := func(c testenv.DaemonConfig) error {
		t.Helper()
		cfg, err := config.Parse([]byte(c.Text(t)))
		if err != nil {
			t.Fatal(err)
		}
		return d.Reload(cfg)
	}
	busy := testenv.StartBackends(t, 1)[0] // holds a TCP port
	newAgent := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	for _, bad := range []struct {
		name string
		edit func(*testenv.DaemonConfig)
		want string
	}{
		{"agent address in use", func(c *testenv.DaemonConfig) { c.AgentListen = busy.Addr }, "agent.listen"},
		{"cookie secret missing", func(c *testenv.DaemonConfig) { c.DNS = `cookie_secret_file = "/nonexistent/cookie.key"` }, "CookieSecretFile"},
		{"DNS address in use after a good agent move", func(c *testenv.DaemonConfig) {
			c.AgentListen = newAgent
			c.DNSListen = []string{s.DNSAddr, busy.Addr}
		}, "listen " + busy.Addr},
	} {
		c := s.Config
		c.TTL = "9s"
		bad.edit(&c)
		if err := reload(c); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: reload error %v, want one naming %q", bad.name, err, bad.want)
		}
		if got := ttl(); got != 5 {
			t.Errorf("%s: TTL %d after a refused reload, want the running 5", bad.name, got)
		}
		if d.AgentAddr().String() != s.AgentAddr {
			t.Errorf("%s: agent moved to %s by a refused reload", bad.name, d.AgentAddr())
		}
	}
	// A good one: new TTL, agent moved, adaptive mode, and a restart-only
	// key (site) that keeps its running value.
	c := s.Config
	c.TTL, c.AgentListen, c.Agent, c.Site = "7s", newAgent, `mode = "adaptive"`, "renamed"
	if err := reload(c); err != nil {
		t.Fatal(err)
	}
	if got := ttl(); got != 7 {
		t.Errorf("TTL %d after the reload, want 7", got)
	}
	if d.AgentAddr().String() != newAgent {
		t.Errorf("agent at %s after the reload, want %s", d.AgentAddr(), newAgent)
	}
	doc := d.Status()
	if doc.Site != "alpha" || doc.AgentMode != config.AgentAdaptive || !doc.Serving {
		t.Errorf("after the reload: site %q (want alpha kept), agent mode %q, serving %v", doc.Site, doc.AgentMode, doc.Serving)
	}
}
