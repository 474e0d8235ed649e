package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/control"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// TestDrainSurvivesRestart drains a real site with drain_servers, restarts
// the daemon, and resumes: the zone is withdrawn at once and stays
// withdrawn across the restart; our agent drains the servers it may and
// undoes exactly those on resume, never an operator's drain.
func TestDrainSurvivesRestart(t *testing.T) {
	backends := startSlowBackends(t, 0, 0, 0, 0, 0)
	backup := startSlowBackends(t, 0)[0]
	agentPort, dnsPort, fePort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	hap := testenv.StartHAProxy(t, siteHAProxy(backends, fePort, agentPort, backup.Addr, true))
	cfg := siteConfigText(t, hap.Socket, dnsPort, agentPort)
	dir := ctlTempDir(t)
	cs := ctlSettings(dir)
	cs.DrainServers = true

	d := startCtlDaemon(t, cfg, cs)
	testenv.Eventually(t, 5*time.Second, "zone served", func() bool { return query(d.dnsAddr) == dns.RcodeSuccess })
	// An operator drains s2 by hand before the site drain.
	if _, err := hap.Command("set server api/s2 state drain"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*time.Second, "s2 drained by the operator", func() bool {
		return d.poller.Snapshot().Stats.Servers[1].Status == "DRAIN (agent)"
	})

	out, err := ctlRun(cs.Socket, "drain", "-reason", "kernel upgrade")
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, out)
	}
	// At once: the first query after the command returns is refused.
	if rc := query(d.dnsAddr); rc != dns.RcodeRefused {
		t.Errorf("first query after drain: rcode %d, want REFUSED", rc)
	}
	ours := []string{"s1", "s3", "s4", "s5"}
	testenv.Eventually(t, 3*time.Second, "our agent drained s1 s3 s4 s5", func() bool {
		st := serverStatuses(t, hap)
		for _, n := range ours {
			if st[n] != "DRAIN (agent)" {
				return false
			}
		}
		return true
	})

	// Restart during maintenance: still withdrawn, for many polls.
	d.stop(t)
	d = startCtlDaemon(t, cfg, cs)
	testenv.Eventually(t, 3*time.Second, "restarted daemon polls", func() bool { return d.poller.Snapshot().Polls > 10 })
	if rc := query(d.dnsAddr); rc != dns.RcodeRefused {
		t.Fatalf("after restart: rcode %d, want REFUSED", rc)
	}
	out, err = ctlRun(cs.Socket, "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"site alpha: WITHDRAWN", `drain: ACTIVE since`, `reason "kernel upgrade"`, "servers drained by our agent: s1 s3 s4 s5", `"drain"`} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	out, err = ctlRun(cs.Socket, "resume")
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	took := testenv.Eventually(t, 5*time.Second, "zone served after resume", func() bool { return query(d.dnsAddr) == dns.RcodeSuccess })
	t.Logf("resume -> zone served: %s", took)
	testenv.Eventually(t, 3*time.Second, "our drains undone and forgotten", func() bool {
		return len(d.poller.Snapshot().Drain.Servers) == 0
	})
	want := map[string]string{"s1": "UP", "s2": "DRAIN (agent)", "s3": "UP", "s4": "UP", "s5": "UP", "b1": "UP", "BACKEND": "UP"}
	if diff := cmp.Diff(want, serverStatuses(t, hap)); diff != "" {
		t.Errorf("after resume (-want +got):\n%s", diff)
	}
	if sd, err := control.NewStore(cs.StateFile).Load(); err != nil || sd.Active || len(sd.Servers) != 0 {
		t.Errorf("state file after resume: %+v, %v", sd, err)
	}
}

// traffic sends GET requests to url at about rate per second until stop is
// called.
type ctlTraffic struct {
	stop func()
	wg   sync.WaitGroup
}

func startCtlTraffic(url string, rate int) *ctlTraffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &ctlTraffic{}
	client := &http.Client{Timeout: 2 * time.Second}
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				tr.wg.Add(1)
				go func() {
					defer tr.wg.Done()
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					if resp, err := client.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
			}
		}
	}()
	tr.stop = func() { cancel(); tr.wg.Wait(); client.CloseIdleConnections() }
	return tr
}

// TestDrainWait: drain -wait fails while clients keep coming, and returns
// once they stop and the frontend stays quiet for control.quiet_period.
func TestDrainWait(t *testing.T) {
	backends := startSlowBackends(t, 0, 0, 0, 0, 0)
	agentPort, dnsPort, fePort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	hap := testenv.StartHAProxy(t, siteHAProxy(backends, fePort, agentPort, "", true))
	cs := ctlSettings(ctlTempDir(t))
	d := startCtlDaemon(t, siteConfigText(t, hap.Socket, dnsPort, agentPort), cs)
	testenv.Eventually(t, 5*time.Second, "zone served", func() bool { return query(d.dnsAddr) == dns.RcodeSuccess })

	tr := startCtlTraffic(fmt.Sprintf("http://127.0.0.1:%d/", fePort), 50)
	defer tr.stop()
	start := time.Now()
	out, err := ctlRun(cs.Socket, "drain", "-reason", "move", "-wait", "1500ms")
	if !errors.Is(err, control.ErrCommand) || !strings.Contains(err.Error(), "not quiet for 500ms within 1.5s: frontend www still busy") {
		t.Errorf("drain -wait under traffic: %v\n%s", err, out)
	}
	if took := time.Since(start); took < 1500*time.Millisecond || took > 4*time.Second {
		t.Errorf("drain -wait under traffic failed after %s, want about 1.5s", took)
	}
	if rc := query(d.dnsAddr); rc != dns.RcodeRefused {
		t.Errorf("a timed-out drain -wait left the zone served: rcode %d", rc)
	}

	got := make(chan error, 1)
	go func() {
		_, err := ctlRun(cs.Socket, "drain", "-reason", "move", "-wait", "20s")
		got <- err
	}()
	// Give the wait a busy reading first, then stop the clients.
	testenv.Eventually(t, 3*time.Second, "frontend busy", func() bool { return frontendRate(t, hap) > 0 })
	tr.stop()
	stopped := time.Now()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("drain -wait after traffic stopped: %v", err)
		}
		// HAProxy's rate covers the last second, then the quiet period.
		took := time.Since(stopped)
		t.Logf("traffic stopped -> drain -wait returned: %s", took)
		if took < cs.QuietPeriod {
			t.Errorf("returned %s after traffic stopped, before the quiet period", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain -wait did not return within 10s of traffic stopping")
	}
}

// frontendRate reads the www frontend's session rate with the test's own
// runtime API client.
func frontendRate(t *testing.T, hap *testenv.HAProxy) int {
	out, err := hap.Command("show stat www 1 -1")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		for i, h := range header {
			if h == "rate" && f[1] == "FRONTEND" {
				var n int
				fmt.Sscan(f[i], &n)
				return n
			}
		}
	}
	return -1
}

func TestControlCommandErrors(t *testing.T) {
	dir := ctlTempDir(t)
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"status"}, "connect: no such file or directory"},
		{[]string{"drain", "extra"}, "usage"},
		{[]string{"drain", "-wait", "soon"}, "usage"},
		{[]string{"frob"}, "usage"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := ctlRun(dir+"/missing.sock", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
