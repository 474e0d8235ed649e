package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// TestMain lets the test binary play the daemon: with SPDU_TEST_MAIN=1 it
// runs main() with its arguments, so lifecycle tests exercise the real
// command line, signals and exit codes (and run under -race).
func TestMain(m *testing.M) {
	if os.Getenv("SPDU_TEST_MAIN") == "1" {
		os.Args = append([]string{"spdu-haproxy"}, os.Args[1:]...)
		main()
		return
	}
	os.Exit(m.Run())
}

// startDaemon runs the test binary as the daemon (see TestMain) with args.
func startDaemon(t *testing.T, args ...string) *testenv.Process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "SPDU_TEST_MAIN=1")
	return testenv.StartProcess(t, cmd)
}

// liveSite starts five backends, HAProxy, and writes a daemon config file
// (mode 0600) with the given extra TOML; it returns the config path and the
// DNS, agent and metrics addresses.
type liveSite struct {
	backends                []*testenv.Backend
	hap                     *testenv.HAProxy
	cfgPath                 string
	dnsAddr, agentAddr, web string
}

func startLiveSite(t *testing.T, grace string) *liveSite {
	t.Helper()
	s := &liveSite{backends: testenv.StartBackends(t, 5)}
	agentPort, dnsPort, webPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	s.hap = testenv.StartHAProxy(t, haproxyConfig(s.backends, agentPort))
	s.dnsAddr = fmt.Sprintf("127.0.0.1:%d", dnsPort)
	s.agentAddr = fmt.Sprintf("127.0.0.1:%d", agentPort)
	s.web = fmt.Sprintf("http://127.0.0.1:%d", webPort)
	ctlDir := shortTempDir(t)
	text := fmt.Sprintf(`site = "alpha"
[haproxy]
socket = %q
backend = "api"
poll_interval = "100ms"
stale_after = "500ms"
[health]
min_up = 3
[dns]
listen = [%q]
zone = "pool.domain.tld."
nameservers = ["alpha.domain.tld."]
shutdown_grace = %q
[dns.records.api]
a = ["127.0.0.1"]
[agent]
listen = %q
[metrics]
listen = "127.0.0.1:%d"
[control]
socket = %q
state_file = %q
`, s.hap.Socket, s.dnsAddr, grace, s.agentAddr, webPort, ctlDir+"/control.sock", ctlDir+"/state.json")
	s.cfgPath = filepath.Join(t.TempDir(), "spdu.toml")
	if err := os.WriteFile(s.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// startServing runs the daemon process on s and waits until it serves the
// zone.
func (s *liveSite) startServing(t *testing.T) *testenv.Process {
	t.Helper()
	d := startDaemon(t, "run", "-config", s.cfgPath)
	testenv.Eventually(t, 10*time.Second, "zone served", func() bool { return query(s.dnsAddr) == dns.RcodeSuccess })
	return d
}

// configText returns the daemon's configuration file as it is now.
func (s *liveSite) configText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestShutdownGraceAndMetrics: the daemon process serves, exports metrics and
// status that agree, and on SIGTERM answers REFUSED for the grace period and
// then exits 0 within a bound.
func TestShutdownGraceAndMetrics(t *testing.T) {
	s := startLiveSite(t, "1s")
	d := s.startServing(t)

	// dig +nsid tells which site answered.
	q := new(dns.Msg)
	q.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	r, err := dns.Exchange(q, s.dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	nsid := ""
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok {
				nsid = n.Nsid
			}
		}
	}
	if want := hex.EncodeToString([]byte("alpha")); nsid != want {
		t.Errorf("NSID %q, want the site name hex-encoded %q", nsid, want)
	}

	m := httpGet(t, s.web+"/metrics")
	for _, want := range []string{"spdu_site_serving 1", "spdu_haproxy_servers_usable 5", "spdu_haproxy_servers 5", "spdu_haproxy_servers_required 3",
		`spdu_dns_queries_total{rcode="NOERROR",transport="udp",type="A"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var st statusDoc
	if err := json.Unmarshal([]byte(httpGet(t, s.web+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Serving || !st.DNSServes || st.Usable != 5 || len(st.Servers) != 5 || st.Site != "alpha" {
		t.Errorf("/status = %+v", st)
	}

	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	refused := 0
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-d.Done():
			took := time.Since(sent)
			if code := d.ExitCode(); code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			if refused == 0 {
				t.Error("no REFUSED answer during the grace period")
			}
			if took < time.Second || took > 3*time.Second {
				t.Errorf("exited %s after SIGTERM, want between the 1s grace and 3s", took)
			}
			t.Logf("SIGTERM -> exit %s, %d REFUSED answers during grace", took, refused)
			return
		case <-tick.C:
			if query(s.dnsAddr) == dns.RcodeRefused {
				refused++
			}
		case <-deadline:
			t.Fatal("daemon did not exit within 5s of SIGTERM")
		}
	}
}

// TestDryRun: with -dry-run the zone is served even when the policy
// withdraws, and agent replies are comments that change nothing.
func TestDryRun(t *testing.T) {
	s := startLiveSite(t, "0s")
	startDaemon(t, "run", "-dry-run", "-config", s.cfgPath)
	testenv.Eventually(t, 10*time.Second, "zone served", func() bool { return query(s.dnsAddr) == dns.RcodeSuccess })
	testenv.Eventually(t, 5*time.Second, "agent reply is a dry-run comment", func() bool {
		return agentAsk(s.agentAddr, "api/s1") == "#dry-run: would reply 100%"
	})
	for _, be := range s.backends[:3] {
		be.Stop()
	}
	testenv.Eventually(t, 5*time.Second, "policy withdraws (status)", func() bool {
		var st statusDoc
		return json.Unmarshal([]byte(httpGet(t, s.web+"/status")), &st) == nil && !st.Serving && st.Usable == 2
	})
	for range 10 {
		if rc := query(s.dnsAddr); rc != dns.RcodeSuccess {
			t.Fatalf("dry-run answered rcode %d while the policy withdraws; want NOERROR", rc)
		}
	}
}

// agentAsk sends one agent-send line and returns the reply without "\n".
func agentAsk(addr, line string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second)) //nolint:errcheck // the read fails otherwise
	fmt.Fprintf(c, "%s\n", line)
	b, _ := io.ReadAll(c)
	return strings.TrimSuffix(string(b), "\n")
}

// TestInsecureConfigRefused: run and check refuse a group-writable
// configuration, cookie secret or state file unless -allow-insecure-config
// is given.
func TestInsecureConfigRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "spdu.toml")
	text := "site = \"alpha\"\n[haproxy]\nbackend = \"api\"\n[dns]\nzone = \"pool.domain.tld\"\nnameservers = [\"ns.domain.tld.\"]\n[dns.records.api]\na = [\"1.2.3.4\"]\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o664); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "-config", p}, {"run", "-config", p}} {
		var out, errOut strings.Builder
		if code := realMain(args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "mode 0664 lets group or others write it") {
			t.Errorf("%v: exit %d, stderr %q; want 1 and the mode named", args, code, errOut.String())
		}
	}
	var out, errOut strings.Builder
	if code := realMain([]string{"check", "-allow-insecure-config", "-config", p}, &out, &errOut); code != 0 {
		t.Errorf("check -allow-insecure-config: exit %d, stderr %q", code, errOut.String())
	}

	// The same rule for the cookie secret and the drain state file, named
	// by their keys; a state file that does not exist yet is fine.
	dir := t.TempDir()
	secret, state := filepath.Join(dir, "cookie.key"), filepath.Join(dir, "state.json")
	if err := os.WriteFile(secret, []byte("00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := strings.Replace(text, "[dns]\n", fmt.Sprintf("[dns]\ncookie_secret_file = %q\n", secret), 1) +
		fmt.Sprintf("[control]\nstate_file = %q\n", state)
	if err := os.WriteFile(p, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := realMain([]string{"check", "-config", p}, io.Discard, &errOut); code != 0 {
		t.Fatalf("check with safe side files and no state file yet: exit %d, stderr %q", code, errOut.String())
	}
	if err := os.WriteFile(state, []byte(`{"version":1,"drained":false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, key string }{{secret, "dns.cookie_secret_file"}, {state, "control.state_file"}} {
		if err := os.Chmod(c.file, 0o620); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"check", "-config", p}, {"run", "-config", p}} {
			var errOut strings.Builder
			if code := realMain(args, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "unsafe "+c.key) ||
				!strings.Contains(errOut.String(), "mode 0620 lets group or others write it") {
				t.Errorf("%v with a group-writable %s: exit %d, stderr %q", args, c.key, code, errOut.String())
			}
		}
		if code := realMain([]string{"check", "-allow-insecure-config", "-config", p}, io.Discard, io.Discard); code != 0 {
			t.Errorf("check -allow-insecure-config with a group-writable %s: exit %d", c.key, code)
		}
		if err := os.Chmod(c.file, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A state file the service user wrote, seen by root: check warns,
	// run refuses (the daemon itself must own it).
	if err := os.Chown(state, 65534, 65534); err != nil {
		t.Fatalf("chown (the tests run as root): %v", err)
	}
	var warnOut strings.Builder
	if code := realMain([]string{"check", "-config", p}, io.Discard, &warnOut); code != 0 ||
		!strings.Contains(warnOut.String(), "warning: unsafe control.state_file") {
		t.Errorf("check with a state file of another owner: exit %d, stderr %q; want 0 and a warning", code, warnOut.String())
	}
	var runOut strings.Builder
	if code := realMain([]string{"run", "-config", p}, io.Discard, &runOut); code != 1 || !strings.Contains(runOut.String(), "owned by another user") {
		t.Errorf("run with a state file of another owner: exit %d, stderr %q", code, runOut.String())
	}
}

// TestDrainThroughDaemon drives the real daemon process's control socket with
// the real command line: drain withdraws at once, survives a daemon restart,
// shows in status and /status, and resume serves again.
func TestDrainThroughDaemon(t *testing.T) {
	s := startLiveSite(t, "0s")
	d := s.startServing(t)
	cli := func(args ...string) (int, string) {
		var out, errOut strings.Builder
		code := realMain(append(args[:1:1], append([]string{"-config", s.cfgPath}, args[1:]...)...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := cli("drain", "-reason", "kernel upgrade"); code != 0 {
		t.Fatalf("drain: exit %d: %s", code, out)
	}
	if rc := query(s.dnsAddr); rc != dns.RcodeRefused {
		t.Errorf("first query after drain returned: rcode %d, want REFUSED", rc)
	}
	if code, out := cli("status"); code != 0 || !strings.Contains(out, "kernel upgrade") {
		t.Errorf("status: exit %d, output lacks the drain reason:\n%s", code, out)
	}
	var st statusDoc
	if err := json.Unmarshal([]byte(httpGet(t, s.web+"/status")), &st); err != nil || !st.Drained || st.DrainNote != "kernel upgrade" || st.Serving {
		t.Errorf("/status during drain = %+v (%v)", st, err)
	}

	d.Signal(syscall.SIGTERM) //nolint:errcheck // checked by the wait
	<-d.Done()
	startDaemon(t, "run", "-config", s.cfgPath)
	testenv.Eventually(t, 10*time.Second, "restarted daemon answers", func() bool { return query(s.dnsAddr) >= 0 })
	// Several polls after the restart: still withdrawn.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if rc := query(s.dnsAddr); rc != dns.RcodeRefused {
			t.Fatalf("restarted daemon answers rcode %d during a drain, want REFUSED", rc)
		}
	}
	if code, out := cli("resume"); code != 0 {
		t.Fatalf("resume: exit %d: %s", code, out)
	}
	testenv.Eventually(t, 5*time.Second, "served after resume", func() bool { return query(s.dnsAddr) == dns.RcodeSuccess })
}

// answerTTL returns the TTL of the A answer for api.pool.domain.tld, or -1.
func answerTTL(addr string) int {
	m := new(dns.Msg)
	m.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 300 * time.Millisecond}).Exchange(m, addr)
	if err != nil || len(r.Answer) == 0 {
		return -1
	}
	return int(r.Answer[0].Header().Ttl)
}

// TestReloadUnderLoad: SIGHUP with a valid file swaps it in (new TTL in the
// answers) and with each invalid file keeps the running one, while a client
// queries all along with zero failed queries.
func TestReloadUnderLoad(t *testing.T) {
	s := startLiveSite(t, "0s")
	d := s.startServing(t)
	orig := s.configText(t)
	load := startQueryLoad(s.dnsAddr) // for the whole test
	if ttl := answerTTL(s.dnsAddr); ttl != 5 {
		t.Fatalf("TTL %d before reload, want 5", ttl)
	}
	good := strings.Replace(string(orig), "[dns]\n", "[dns]\nttl = \"7s\"\n", 1)
	reloadWith(t, d, s.cfgPath, good, "configuration reloaded")
	testenv.Eventually(t, 5*time.Second, "new TTL served", func() bool { return answerTTL(s.dnsAddr) == 7 })

	// rep replaces the first old in the good file.
	rep := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	for _, bad := range []struct{ name, text, log string }{
		{"unknown key", good + "colour = 1\n", `unknown key`},
		{"syntax", good + "[dns\n", `toml:`},
		{"bad ttl", rep(`ttl = "7s"`, `ttl = "9x"`), `dns.ttl`},
		{"ttl fraction", rep(`ttl = "7s"`, `ttl = "1500ms"`), `dns.ttl: 1.5s must be a whole number of seconds`},
		{"min_up zero", rep("min_up = 3", "min_up = 0"), `health.min_up`},
		{"min_up percent", rep("min_up = 3", `min_up = "160%"`), `health.min_up`},
		{"rise", rep("min_up = 3", "min_up = 3\nrise = 500"), `health.rise: 500 must be from 1 to 100`},
		{"no site", rep(`site = "alpha"`, ""), `site: required`},
		{"no backend", rep(`backend = "api"`, ""), `haproxy.backend: required`},
		{"relative socket", rep(`socket = "/`, `socket = "`), `haproxy.socket`},
		{"poll too fast", rep(`poll_interval = "100ms"`, `poll_interval = "1ms"`), `haproxy.poll_interval: 1ms must be from 50ms to 1m0s`},
		{"stale too short", rep(`stale_after = "500ms"`, `stale_after = "50ms"`), `haproxy.stale_after`},
		{"listen hostname", rep(`listen = ["127.0.0.1:`, `listen = ["localhost:`), `dns.listen`},
		{"bad zone", rep(`zone = "pool.domain.tld."`, `zone = "pool..tld."`), `dns.zone`},
		{"relative nameserver", rep(`nameservers = ["alpha.domain.tld."]`, `nameservers = ["alpha"]`), `dns.nameservers`},
		{"withdraw word", rep(`zone = `, "withdraw = \"silence\"\nzone = "), `dns.withdraw`},
		{"a not ip", rep(`a = ["127.0.0.1"]`, `a = ["127.0.0"]`), `dns.records.api.a`},
		{"no addresses", rep(`a = ["127.0.0.1"]`, ""), `dns.records.api: needs at least one address`},
		{"agent mode", rep("[agent]\n", "[agent]\nmode = \"smart\"\n"), `agent.mode`},
		{"rrl rate", good + "[dns.rrl]\nrate = -5\n", `dns.rrl.rate`},
		{"peers in self mode", good + "[[peers]]\nname = \"beta\"\na = [\"5.6.7.8\"]\nprobe = \"https://5.6.7.8/status\"\n", `peers: configured, but dns.mode is`},
		{"world-writable", good, `lets group or others write it`},
	} {
		if bad.name == "world-writable" {
			// os.WriteFile keeps an existing file's mode.
			if err := os.Chmod(s.cfgPath, 0o666); err != nil {
				t.Fatal(err)
			}
		}
		if logs := reloadWith(t, d, s.cfgPath, bad.text, "reload failed"); !strings.Contains(logs, bad.log) {
			t.Errorf("%s: the refusal does not say %q:\n%s", bad.name, bad.log, logs)
		}
		if ttl := answerTTL(s.dnsAddr); ttl != 7 {
			t.Errorf("%s: TTL %d after a refused reload, want the running 7", bad.name, ttl)
		}
	}
	if err := os.Chmod(s.cfgPath, 0o600); err != nil {
		t.Fatal(err)
	}
	// One more valid reload, then keep the load up long enough to count.
	reloadWith(t, d, s.cfgPath, strings.Replace(good, `ttl = "7s"`, `ttl = "6s"`, 1), "configuration reloaded")
	testenv.Eventually(t, 5*time.Second, "second reload served", func() bool { return answerTTL(s.dnsAddr) == 6 })
	total, failed := load.stop(t, 500)
	t.Logf("reloads under load: %d queries, %d failed", total, failed)
	if failed > 0 {
		t.Errorf("%d of %d queries failed across reloads", failed, total)
	}
}
