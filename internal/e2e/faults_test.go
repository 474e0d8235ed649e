package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// TestHAProxyKilledAndRestarted: fault 1.
func TestHAProxyKilledAndRestarted(t *testing.T) {
	t.Parallel()
	s := startSite(t, testenv.SiteOpts{}, false)
	testenv.Eventually(t, 10*time.Second, "served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	s.HAProxy.Kill()
	limit := staleAfter + poll + 300*time.Millisecond
	took := testenv.Eventually(t, limit, "withdrawn after HAProxy is killed", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeRefused })
	t.Logf("HAProxy killed -> REFUSED after %s (bound %s)", took, limit)
	s.HAProxy.Restart(t)
	took = testenv.Eventually(t, 5*time.Second, "served again after restart", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	t.Logf("HAProxy restarted -> served after %s, with no daemon restart", took)
}

// TestHAProxyFrozen: fault 2. A SIGSTOPped HAProxy accepts nothing on its
// socket; polls time out under their own deadline, the zone is withdrawn
// within stale_after + a poll, and DNS and the agent keep answering
// promptly throughout.
func TestHAProxyFrozen(t *testing.T) {
	t.Parallel()
	s := startSite(t, testenv.SiteOpts{}, false)
	testenv.Eventually(t, 10*time.Second, "served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	if err := s.HAProxy.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.HAProxy.Signal(syscall.SIGCONT) }) //nolint:errcheck // so that Kill works
	frozen := time.Now()
	var worst time.Duration
	limit := staleAfter + poll + 300*time.Millisecond
	took := testenv.Eventually(t, limit, "withdrawn while HAProxy is frozen", func() bool {
		rc, _, d := testenv.Query(s.DNSAddr, time.Second)
		worst = max(worst, d)
		return rc == dns.RcodeRefused
	})
	// Keep asking for another two stale periods: every answer prompt.
	for time.Since(frozen) < 3*staleAfter {
		rc, _, d := testenv.Query(s.DNSAddr, time.Second)
		worst = max(worst, d)
		if rc != dns.RcodeRefused {
			t.Fatalf("rcode %d while frozen, want REFUSED", rc)
		}
	}
	agentStart := time.Now()
	reply := testenv.AgentAsk(s.AgentAddr, "api/s1")
	agentTook := time.Since(agentStart)
	if worst > 100*time.Millisecond || agentTook > 100*time.Millisecond {
		t.Errorf("slowest DNS answer %s, agent reply %s while HAProxy frozen; want both under 100ms", worst, agentTook)
	}
	if reply != "100%" {
		t.Errorf("agent reply while frozen %q, want the last known 100%%", reply)
	}
	t.Logf("HAProxy frozen -> REFUSED after %s; slowest DNS answer %s; agent reply in %s", took, worst, agentTook)
	if err := s.HAProxy.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	took = testenv.Eventually(t, 40*time.Second, "served again after SIGCONT", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	t.Logf("SIGCONT -> served after %s", took)
}

// TestSocketMissingAtStart: fault 3. The daemon starts before HAProxy,
// stays withdrawn, logs the reason once (not once per poll), and serves once
// the socket appears.
func TestSocketMissingAtStart(t *testing.T) {
	t.Parallel()
	s := startSite(t, testenv.SiteOpts{}, true)
	s.HAProxy.Kill()
	if err := os.Remove(s.HAProxy.Socket); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	d := startDaemon(t, s.CfgPath)
	testenv.Eventually(t, 10*time.Second, "daemon answers", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeRefused })
	testenv.Eventually(t, 5*time.Second, "the poll failure is logged", func() bool {
		return strings.Contains(d.Output(), "runtime API poll failed")
	})
	// Ten more poll intervals of failing polls: still one log line.
	deadline := time.Now().Add(10 * poll)
	for time.Now().Before(deadline) {
		if testenv.Rcode(s.DNSAddr) != dns.RcodeRefused {
			t.Fatal("served without HAProxy")
		}
	}
	if n := strings.Count(d.Output(), "runtime API poll failed"); n != 1 {
		t.Errorf("poll failure logged %d times over 10+ polls, want once per change", n)
	}
	if !strings.Contains(d.Output(), "no such file or directory") {
		t.Errorf("log does not say why:\n%s", d.Output())
	}
	s.HAProxy.Restart(t)
	took := testenv.Eventually(t, 5*time.Second, "served once the socket appears", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	t.Logf("socket appeared -> served after %s", took)
}

// TestSocketPermissionDenied: fault 3, second case. The daemon runs as
// nobody and cannot open the root-only socket: withdrawn with the reason,
// and served once the socket's mode lets it in.
func TestSocketPermissionDenied(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the daemon as nobody and so must run as root (CI does)")
	}
	s := startSite(t, testenv.SiteOpts{}, true)
	// nobody must read the config (root-owned, not group/world writable)
	// and reach the socket's directory; the control socket and state file
	// go to a directory nobody owns.
	cfgDir := testenv.TempDir(t)
	stateDir := filepath.Join(cfgDir, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(stateDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	c := s.Config
	c.Dir = stateDir
	cfgPath := filepath.Join(cfgDir, "alpha.toml")
	if err := os.WriteFile(cfgPath, []byte(c.Text(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.HAProxy.Dir, cfgDir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dd := startDaemonAs(t, cfgPath, 65534)
	testenv.Eventually(t, 10*time.Second, "withdrawn with permission denied", func() bool {
		return testenv.Rcode(s.DNSAddr) == dns.RcodeRefused && strings.Contains(dd.Output(), "permission denied")
	})
	if err := os.Chmod(s.HAProxy.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	took := testenv.Eventually(t, 5*time.Second, "served once the socket is accessible", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	t.Logf("socket made accessible -> served after %s", took)
	if n := strings.Count(dd.Output(), "runtime API poll failed"); n != 1 {
		t.Errorf("poll failure logged %d times, want once", n)
	}
}

// TestFlapping: fault 4. One backend goes up and down every 500 ms for 30 s
// with min_up 5 of 5, so each of its flaps matters. The withdraw/serve
// transitions must stay within what rise and fall allow: a transition needs
// at least rise (or fall) polls in the new state, so at most one per
// 2 polls, and HAProxy's own check (inter 100 ms, rise 1 fall 1) follows
// each flap.
func TestFlapping(t *testing.T) {
	t.Parallel()
	s := startSite(t, testenv.SiteOpts{Daemon: testenv.DaemonConfig{MinUp: 5}}, false)
	testenv.Eventually(t, 10*time.Second, "served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	const period = 500 * time.Millisecond
	duration := 30 * time.Second
	tick := time.NewTicker(period)
	defer tick.Stop()
	end := time.After(duration)
	up := true
	flaps := 0
loop:
	for {
		select {
		case <-tick.C:
			if up {
				s.Backends[0].Stop()
			} else {
				s.Backends[0].Start(t)
			}
			up = !up
			flaps++
		case <-end:
			break loop
		}
	}
	if !up {
		s.Backends[0].Start(t)
	}
	changes := strings.Count(s.Daemon.Output(), "site state changed")
	// Upper bound: one transition per flap (each flap lasts 5 polls, enough
	// for rise or fall of 2), plus the initial serve.
	maxChanges := flaps + 1
	if changes > maxChanges {
		t.Errorf("%d state changes for %d flaps, more than rise/fall allow (%d)", changes, flaps, maxChanges)
	}
	t.Logf("flapping %s every %s: %d flaps, %d site state changes (bound %d)", duration, period, flaps, changes, maxChanges)
}
