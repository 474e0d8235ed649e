package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// Timing of the end-to-end site: HAProxy checks every 100 ms and marks a
// server down after one failed check; the daemon polls every 100 ms.
const (
	checkInter   = 100 * time.Millisecond
	pollInterval = 100 * time.Millisecond
	staleAfter   = 500 * time.Millisecond
	rise, fall   = 2, 2
)

func haproxyConfig(backends []*testenv.Backend, agentPort int) string {
	return testenv.HAProxyPreamble(time.Second) + "backend api\n    balance roundrobin\n    option httpchk GET /status\n" +
		testenv.ServerLines(backends, agentPort, checkInter)
}

func daemonConfig(t *testing.T, socket string, dnsPort, agentPort int) *config.Config {
	t.Helper()
	ctlDir := shortTempDir(t)
	text := fmt.Sprintf(`
site = "alpha"
[haproxy]
socket = %q
backend = "api"
poll_interval = %q
stale_after = %q
[health]
min_up = 3
rise = %d
fall = %d
[dns]
listen = ["127.0.0.1:%d"]
zone = "pool.domain.tld."
ttl = "5s"
shutdown_grace = "0s"
nameservers = ["alpha.domain.tld.", "beta.domain.tld."]
[dns.records.api]
a = ["127.0.0.1"]
aaaa = ["2001:db8::1"]
[agent]
listen = "127.0.0.1:%d"
[metrics]
listen = "off"
[control]
socket = %q
state_file = %q
`, socket, pollInterval, staleAfter, rise, fall, dnsPort, agentPort, ctlDir+"/control.sock", ctlDir+"/state.json")
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// shortTempDir is a temporary directory with a short path: unix socket
// paths are limited to 108 bytes and t.TempDir's can be longer.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spdu-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// query asks the daemon for api.pool.domain.tld. A over UDP and returns the
// rcode, or -1 when no reply came.
func query(addr string) int {
	m := new(dns.Msg)
	m.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return -1
	}
	return r.Rcode
}

// TestSiteEndToEnd runs the daemon in-process against a real HAProxy and
// five real backends, and checks the whole main path: withdrawn at start,
// served once healthy, withdrawn when backends fall below min_up, back when
// they return, withdrawn when HAProxy dies, back when it restarts; and that
// HAProxy applies our agent-check replies.
func TestSiteEndToEnd(t *testing.T) {
	backends := testenv.StartBackends(t, 5)
	agentPort, dnsPort := testenv.FreePort(t), testenv.FreePort(t)
	hap := testenv.StartHAProxy(t, haproxyConfig(backends, agentPort))
	cfg := daemonConfig(t, hap.Socket, dnsPort, agentPort)
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", dnsPort)

	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	go func() { runErr <- run(ctx, logger, cfg, options{}) }()
	defer func() {
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("run did not return within 5s of cancellation")
		}
	}()

	// Start-up: REFUSED until rise good polls, then the A record.
	testenv.Eventually(t, 5*time.Second, "daemon answers the zone", func() bool { return query(dnsAddr) >= 0 })
	took := testenv.Eventually(t, 5*time.Second, "zone served after start-up", func() bool { return query(dnsAddr) == dns.RcodeSuccess })
	t.Logf("served %s after the DNS listener answered", took)

	// Our agent's effect: a runtime weight change is undone by the agent's
	// "100%" within a few agent intervals, on every server (nothing else in
	// this HAProxy changes weights). A weight-only reply shows in show stat
	// as agent_status CHECKED, "No status change".
	for _, be := range backends {
		if _, err := hap.Command("set server api/" + be.Name + " weight 37"); err != nil {
			t.Fatal(err)
		}
	}
	var last map[string]map[string]string
	testenv.Eventually(t, 3*time.Second, "agent restores weight 100 on every server", func() bool {
		last = hap.ShowStat(t, "api")
		for _, be := range backends {
			r := last[be.Name]
			if r["weight"] != "100" || r["agent_status"] != "CHECKED" {
				t.Logf("%s: weight %s agent_status %s agent_desc %q", be.Name, r["weight"], r["agent_status"], r["agent_desc"])
				return false
			}
		}
		return true
	})

	// Three of five backends stop: below min_up 3.
	for _, be := range backends[:3] {
		be.Stop()
	}
	limit := checkInter*2 + fall*pollInterval + pollInterval + 300*time.Millisecond
	took = testenv.Eventually(t, limit, "REFUSED after 3 backends stop", func() bool { return query(dnsAddr) == dns.RcodeRefused })
	t.Logf("backends stopped -> first REFUSED: %s (bound %s)", took, limit)

	for _, be := range backends[:3] {
		be.Start(t)
	}
	limit = checkInter*2 + rise*pollInterval + pollInterval + 300*time.Millisecond
	took = testenv.Eventually(t, limit, "answers return after backends restart", func() bool { return query(dnsAddr) == dns.RcodeSuccess })
	t.Logf("backends restarted -> first answer: %s (bound %s)", took, limit)

	// HAProxy killed: withdrawn once the last good poll is stale_after old.
	hap.Kill()
	limit = staleAfter + pollInterval + 200*time.Millisecond
	took = testenv.Eventually(t, limit, "REFUSED after HAProxy dies", func() bool { return query(dnsAddr) == dns.RcodeRefused })
	t.Logf("HAProxy killed -> first REFUSED: %s (bound %s)", took, limit)

	hap.Restart(t)
	testenv.Eventually(t, 5*time.Second, "served again after HAProxy restarts", func() bool { return query(dnsAddr) == dns.RcodeSuccess })
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.toml"
	bad := dir + "/bad.toml"
	if err := os.WriteFile(good, []byte("site = \"alpha\"\n[haproxy]\nbackend = \"api\"\n[dns]\nzone = \"pool.domain.tld\"\nnameservers = [\"ns.domain.tld.\"]\n[dns.records.api]\na = [\"1.2.3.4\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("site = \"alpha\"\n[health]\nrise = 0\nfall = -3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // substring expected on stdout
		stderr string // substring expected on stderr
	}{
		{[]string{"check", "-config", good}, 0, `poll_interval = "500ms"`, ""},
		{[]string{"check", "-config", bad}, 1, "", "config " + bad + ": haproxy.backend: required"},
		{[]string{"check", "-config", dir + "/missing.toml"}, 1, "", "no such file or directory"},
		{[]string{"version"}, 0, "spdu-haproxy ", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{}, 2, "", "usage:"},
		{[]string{"run", "-log-format", "xml", "-config", good}, 2, "", `-log-format: "xml" is not json or console`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			code := realMain(tc.args, &out, &errOut)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q does not contain %q", out.String(), tc.stdout)
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tc.stderr)
			}
		})
	}
}
