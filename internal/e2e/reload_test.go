package e2e

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// queryLoad queries one DNS address every 5 ms until stopped, allowing one
// retry per query (a datagram can be lost on any network).
type queryLoad struct {
	stopc         chan struct{}
	wg            sync.WaitGroup
	total, failed atomic.Int64
}

func startQueryLoad(addr string) *queryLoad {
	l := &queryLoad{stopc: make(chan struct{})}
	l.wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stopc:
				return
			case <-tick.C:
			}
			l.total.Add(1)
			if testenv.Rcode(addr) != dns.RcodeSuccess && testenv.Rcode(addr) != dns.RcodeSuccess {
				l.failed.Add(1)
			}
		}
	})
	return l
}

// stop waits until at least n queries were sent, ends the load and
// returns its query counts.
func (l *queryLoad) stop(t *testing.T, n int64) (total, failed int64) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("%d queries under load", n), func() bool { return l.total.Load() >= n })
	close(l.stopc)
	l.wg.Wait()
	return l.total.Load(), l.failed.Load()
}

// nsidOf asks addr for api A with an NSID request and returns the NSID in
// the reply, or "".
func nsidOf(t *testing.T, addr string) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	r, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatalf("NSID query: %v", err)
	}
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok {
				b, err := hex.DecodeString(n.Nsid)
				if err != nil {
					t.Fatalf("NSID option %q: %v", n.Nsid, err)
				}
				return string(b)
			}
		}
	}
	return ""
}

// TestReloadMovesListeners: SIGHUP moves the DNS, agent, metrics and control
// listeners (new bound before old closed, zero failed queries on an address
// that stays), refuses a move that cannot bind as a whole, and turns
// metrics off.
func TestReloadMovesListeners(t *testing.T) {
	s := startLiveSite(t, "0s")
	d := s.startServing(t)
	orig := s.configText(t)
	ctl1 := filepath.Join(s.Config.Dir, "control.sock")
	ctlRun := func(socket string, args ...string) (string, error) {
		code, out := testenv.RunBinary(t, append(args[:1:1], append([]string{"-socket", socket}, args[1:]...)...)...)
		if code != 0 {
			return out, fmt.Errorf("exit %d", code)
		}
		return out, nil
	}
	if _, err := ctlRun(ctl1, "status"); err != nil {
		t.Fatalf("status on %s: %v", ctl1, err)
	}
	web1 := strings.TrimPrefix(s.web, "http://")
	dns2 := fmt.Sprintf("127.0.0.2:%d", testenv.FreePort(t))
	agent2 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	web2 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctl2 := filepath.Join(filepath.Dir(ctl1), "control2.sock")
	rep := func(text string, pairs ...string) string { return strings.NewReplacer(pairs...).Replace(text) }

	// 1. Add a DNS address, move the agent, metrics and control socket (and
	// change the agent mode, which status must show, and hide the NSID),
	// while a client queries the DNS address that stays.
	if got := nsidOf(t, s.DNSAddr); got != "alpha" {
		t.Fatalf("NSID before the reload = %q, want alpha", got)
	}
	load := startQueryLoad(s.DNSAddr)
	step1 := rep(orig,
		fmt.Sprintf("listen = [%q]", s.DNSAddr), fmt.Sprintf("listen = [%q, %q]", s.DNSAddr, dns2),
		fmt.Sprintf("listen = %q", s.AgentAddr), fmt.Sprintf("listen = %q", agent2),
		fmt.Sprintf("listen = %q", web1), fmt.Sprintf("listen = %q", web2),
		fmt.Sprintf("socket = %q", ctl1), fmt.Sprintf("socket = %q", ctl2),
		"[agent]\n", "[agent]\nmode = \"adaptive\"\n",
		"[dns]\n", "[dns]\nidentity = false\n")
	if step1 == orig || strings.Count(step1, "127.0.0.2") != 1 {
		t.Fatalf("test bug: replacements did not apply:\n%s", step1)
	}
	logs := testenv.Reload(t, d, s.CfgPath, step1, "configuration reloaded")
	if !strings.Contains(logs, "listeners moved") || strings.Contains(logs, "next restart") {
		t.Errorf("reload log lacks the move, or defers a key to a restart:\n%s", logs)
	}
	if rc := testenv.Rcode(dns2); rc != dns.RcodeSuccess {
		t.Errorf("new DNS address %s: rcode %d, want NOERROR", dns2, rc)
	}
	if got := nsidOf(t, s.DNSAddr); got != "" {
		t.Errorf("NSID %q after dns.identity = false was reloaded", got)
	}
	if r := testenv.AgentAsk(agent2, "api/s1"); !strings.HasSuffix(r, "%") {
		t.Errorf("agent on new address %s replied %q, want a weight", agent2, r)
	}
	if r := testenv.AgentAsk(s.AgentAddr, "api/s1"); !strings.HasPrefix(r, "dial:") {
		t.Errorf("agent on old address %s still replies %q", s.AgentAddr, r)
	}
	if body := httpGet(t, "http://"+web2+"/metrics"); !strings.Contains(body, "spdu_site_serving 1") {
		t.Errorf("metrics on new address lack spdu_site_serving 1")
	}
	if httpAnswers(s.web + "/metrics") {
		t.Errorf("metrics still served on the old address %s", web1)
	}
	if out, err := ctlRun(ctl2, "status"); err != nil || !strings.Contains(out, "site alpha: SERVING") || !strings.Contains(out, "agent: adaptive") {
		t.Errorf("status on the new control socket: %v\n%s", err, out)
	}
	if _, err := os.Stat(ctl1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old control socket %s still there: %v", ctl1, err)
	}

	// 2. Drop the first DNS address: it goes silent; the other answers.
	total, failed := load.stop(t, 100)
	t.Logf("adding a DNS address: %d queries on the kept one, %d failed", total, failed)
	if failed > 0 {
		t.Errorf("%d of %d queries failed on the kept address while listeners moved", failed, total)
	}
	load = startQueryLoad(dns2)
	step2 := rep(step1, fmt.Sprintf("listen = [%q, %q]", s.DNSAddr, dns2), fmt.Sprintf("listen = [%q]", dns2))
	testenv.Reload(t, d, s.CfgPath, step2, "configuration reloaded")
	if rc := testenv.Rcode(s.DNSAddr); rc != -1 {
		t.Errorf("dropped DNS address %s still answers: rcode %d", s.DNSAddr, rc)
	}

	// 3. A move that cannot bind is refused whole: the agent address is
	// taken, so the DNS address added in the same file is not bound either.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dns3 := fmt.Sprintf("127.0.0.3:%d", testenv.FreePort(t))
	bad := rep(step2, fmt.Sprintf("listen = [%q]", dns2), fmt.Sprintf("listen = [%q, %q]", dns2, dns3),
		fmt.Sprintf("listen = %q", agent2), fmt.Sprintf("listen = %q", busy.Addr()),
		`[dns]`+"\n", "[dns]\nttl = \"9s\"\n")
	logs = testenv.Reload(t, d, s.CfgPath, bad, "reload failed")
	if !strings.Contains(logs, "agent.listen") {
		t.Errorf("refused reload does not name agent.listen:\n%s", logs)
	}
	if rc := testenv.Rcode(dns3); rc != -1 {
		t.Errorf("DNS address %s of a refused reload answers: rcode %d", dns3, rc)
	}
	if ttl := answerTTL(dns2); ttl != 5 {
		t.Errorf("TTL %d after a refused reload, want the running 5", ttl)
	}
	if r := testenv.AgentAsk(agent2, "api/s1"); !strings.HasSuffix(r, "%") {
		t.Errorf("agent stopped after a refused reload: %q", r)
	}

	// 4. Metrics off.
	testenv.Reload(t, d, s.CfgPath, rep(step2, fmt.Sprintf("listen = %q", web2), `listen = "off"`), "configuration reloaded")
	if httpAnswers("http://" + web2 + "/metrics") {
		t.Errorf("metrics still served on %s after metrics.listen = off", web2)
	}
	total, failed = load.stop(t, 100)
	t.Logf("dropping a DNS address, a refused move, metrics off: %d queries, %d failed", total, failed)
	if failed > 0 {
		t.Errorf("%d of %d queries failed on the kept address", failed, total)
	}

	// 5. Moves the kernel refuses while the old socket holds the port: the
	// same socket addresses spelled as IPv4-mapped IPv6 (as 0.0.0.0:53
	// narrowed to one address would be). The old listeners are closed
	// first, and the new ones serve on the same ports.
	step4 := rep(step2, fmt.Sprintf("listen = %q", web2), `listen = "off"`)
	mapped := func(addr string) string {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return net.JoinHostPort("::ffff:"+h, p)
	}
	step5 := rep(step4, fmt.Sprintf("listen = [%q]", dns2), fmt.Sprintf("listen = [%q]", mapped(dns2)),
		fmt.Sprintf("listen = %q", agent2), fmt.Sprintf("listen = %q", mapped(agent2)))
	logs = testenv.Reload(t, d, s.CfgPath, step5, "configuration reloaded")
	for _, want := range []string{"agent.listen overlaps the old address", "the new address overlaps the old one on the same port"} {
		if !strings.Contains(logs, want) {
			t.Errorf("reload log lacks %q:\n%s", want, logs)
		}
	}
	if rc := testenv.Rcode(dns2); rc != dns.RcodeSuccess {
		t.Errorf("DNS on %s after the same-port move: rcode %d", dns2, rc)
	}
	if r := testenv.AgentAsk(agent2, "api/s1"); !strings.HasSuffix(r, "%") {
		t.Errorf("agent on %s after the same-port move replied %q", agent2, r)
	}
}
