package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/status"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// liveSite is a site whose daemon exports metrics and status on web, with
// dns.shutdown_grace grace.
type liveSite struct {
	*site
	web string // "http://127.0.0.1:port"
}

func startLiveSite(t *testing.T, grace string) *liveSite {
	t.Helper()
	web := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	s := startSite(t, testenv.SiteOpts{Daemon: testenv.DaemonConfig{Metrics: web, Grace: grace, Nameservers: []string{"alpha.domain.tld."}}}, true)
	return &liveSite{site: s, web: "http://" + web}
}

// startServing runs the daemon process on s and waits until it serves the
// zone.
func (s *liveSite) startServing(t *testing.T) *Daemon {
	t.Helper()
	d := startDaemon(t, s.CfgPath)
	testenv.Eventually(t, 10*time.Second, "zone served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	return d
}

// configText returns the daemon's configuration file as it is now.
func (s *liveSite) configText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(s.CfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// getStatus reads the daemon's full status document from web/status.
func getStatus(t *testing.T, web string) status.Document {
	t.Helper()
	var st status.Document
	if err := json.Unmarshal([]byte(httpGet(t, web+"/status")), &st); err != nil || st.Detail == nil {
		t.Fatalf("/status: %v (%+v)", err, st)
	}
	return st
}

// TestShutdownGraceAndMetrics: the daemon process serves, exports metrics and
// status that agree, and on SIGTERM answers REFUSED for the grace period and
// then exits 0 within a bound.
func TestShutdownGraceAndMetrics(t *testing.T) {
	s := startLiveSite(t, "1s")
	d := s.startServing(t)

	// dig +nsid tells which site answered.
	if got := nsidOf(t, s.DNSAddr); got != "alpha" {
		t.Errorf("NSID %q, want the site name", got)
	}

	m := httpGet(t, s.web+"/metrics")
	for _, want := range []string{"spdu_site_serving 1", "spdu_haproxy_servers_usable 5", "spdu_haproxy_servers 5", "spdu_haproxy_servers_required 3",
		`spdu_dns_queries_total{rcode="NOERROR",transport="udp",type="A"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	st := getStatus(t, s.web)
	if !st.Serving || !st.DNSServing || st.Usable != 5 || len(st.Servers) != 5 || st.Site != "alpha" {
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
			if testenv.Rcode(s.DNSAddr) == dns.RcodeRefused {
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
	startDaemon(t, s.CfgPath, "-dry-run")
	testenv.Eventually(t, 10*time.Second, "zone served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	testenv.Eventually(t, 5*time.Second, "agent reply is a dry-run comment", func() bool {
		return testenv.AgentAsk(s.AgentAddr, "api/s1") == "#dry-run: would reply 100%"
	})
	for _, be := range s.Backends[:3] {
		be.Stop()
	}
	testenv.EventuallyEvery(t, 5*time.Second, 50*time.Millisecond, "policy withdraws (status)", func() bool {
		st := getStatus(t, s.web)
		return !st.Serving && st.Usable == 2
	})
	for range 10 {
		if rc := testenv.Rcode(s.DNSAddr); rc != dns.RcodeSuccess {
			t.Fatalf("dry-run answered rcode %d while the policy withdraws; want NOERROR", rc)
		}
	}
}

// TestDrainThroughDaemon drives the real daemon process's control socket with
// the real command line: drain withdraws at once, survives a daemon restart,
// shows in status and /status, and resume serves again.
func TestDrainThroughDaemon(t *testing.T) {
	s := startLiveSite(t, "0s")
	d := s.startServing(t)
	cli := func(args ...string) (int, string) {
		return testenv.RunBinary(t, append(args[:1:1], append([]string{"-config", s.CfgPath}, args[1:]...)...)...)
	}
	if code, out := cli("drain", "-reason", "kernel upgrade"); code != 0 {
		t.Fatalf("drain: exit %d: %s", code, out)
	}
	if rc := testenv.Rcode(s.DNSAddr); rc != dns.RcodeRefused {
		t.Errorf("first query after drain returned: rcode %d, want REFUSED", rc)
	}
	if code, out := cli("status"); code != 0 || !strings.Contains(out, "kernel upgrade") {
		t.Errorf("status: exit %d, output lacks the drain reason:\n%s", code, out)
	}
	if st := getStatus(t, s.web); !st.Drain.Active || st.Drain.Reason != "kernel upgrade" || st.Serving {
		t.Errorf("/status during drain = %+v", st.Drain)
	}

	stopDaemon(t, d)
	startDaemon(t, s.CfgPath)
	testenv.Eventually(t, 10*time.Second, "restarted daemon answers", func() bool { return testenv.Rcode(s.DNSAddr) >= 0 })
	// Several polls after the restart: still withdrawn.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if rc := testenv.Rcode(s.DNSAddr); rc != dns.RcodeRefused {
			t.Fatalf("restarted daemon answers rcode %d during a drain, want REFUSED", rc)
		}
	}
	if code, out := cli("resume"); code != 0 {
		t.Fatalf("resume: exit %d: %s", code, out)
	}
	testenv.Eventually(t, 5*time.Second, "served after resume", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
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
	load := startQueryLoad(s.DNSAddr) // for the whole test
	if ttl := answerTTL(s.DNSAddr); ttl != 5 {
		t.Fatalf("TTL %d before reload, want 5", ttl)
	}
	good := strings.Replace(string(orig), "[dns]\n", "[dns]\nttl = \"7s\"\n", 1)
	testenv.Reload(t, d, s.CfgPath, good, "configuration reloaded")
	testenv.Eventually(t, 5*time.Second, "new TTL served", func() bool { return answerTTL(s.DNSAddr) == 7 })

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
			if err := os.Chmod(s.CfgPath, 0o666); err != nil {
				t.Fatal(err)
			}
		}
		if logs := testenv.Reload(t, d, s.CfgPath, bad.text, "reload failed"); !strings.Contains(logs, bad.log) {
			t.Errorf("%s: the refusal does not say %q:\n%s", bad.name, bad.log, logs)
		}
		if ttl := answerTTL(s.DNSAddr); ttl != 7 {
			t.Errorf("%s: TTL %d after a refused reload, want the running 7", bad.name, ttl)
		}
	}
	if err := os.Chmod(s.CfgPath, 0o600); err != nil {
		t.Fatal(err)
	}
	// One more valid reload, then keep the load up long enough to count.
	testenv.Reload(t, d, s.CfgPath, strings.Replace(good, `ttl = "7s"`, `ttl = "6s"`, 1), "configuration reloaded")
	testenv.Eventually(t, 5*time.Second, "second reload served", func() bool { return answerTTL(s.DNSAddr) == 6 })
	total, failed := load.stop(t, 500)
	t.Logf("reloads under load: %d queries, %d failed", total, failed)
	if failed > 0 {
		t.Errorf("%d of %d queries failed across reloads", failed, total)
	}
}

// httpClient is the one HTTP client of these tests: every request is
// bounded.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// httpGet returns the body of GET url, failing the test unless it is
// 200 OK.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

// httpAnswers reports whether anything answers GET url with an HTTP
// response, whatever its status.
func httpAnswers(url string) bool {
	resp, err := httpClient.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}
