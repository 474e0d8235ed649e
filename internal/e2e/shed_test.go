package e2e

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// metricValue returns the value of the sample named name (with its labels,
// if any, as exposed) in a /metrics page, or -1 when absent.
func metricValue(page, name string) float64 {
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// shedCount sends n queries for api.pool.domain.tld A to addr and returns
// how many got REFUSED; any other rcode than REFUSED or NOERROR fails.
func shedCount(t *testing.T, addr string, n int) int {
	t.Helper()
	refused := 0
	for i := range n {
		switch rc := testenv.Rcode(addr); rc {
		case dns.RcodeRefused:
			refused++
		case dns.RcodeSuccess:
		default:
			t.Fatalf("query %d: rcode %d; want NOERROR or REFUSED", i, rc)
		}
	}
	return refused
}

// waitServed waits until the daemon at addr (restarted: withdrawn until
// healthy) hands out the service name's address at least once.
func waitServed(t *testing.T, addr string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "restarted daemon serves", func() bool { return testenv.Rcode(addr) == dns.RcodeSuccess })
}

// TestManualShedThroughDaemon drives `spdu-haproxy shed` against the real
// daemon process (issue 16, manual control): with shed 0.5 about half of
// the direct queries get REFUSED and the daemon counts them; status and
// /metrics show it; a restart keeps the persisted shed; shed off ends it;
// and a shed with -for expires by itself, after a restart too.
func TestManualShedThroughDaemon(t *testing.T) {
	s := startLiveSite(t, "0s")
	d := s.startServing(t)
	cli := func(args ...string) (int, string) {
		return testenv.RunBinary(t, append(args[:1:1], append([]string{"-config", s.CfgPath}, args[1:]...)...)...)
	}
	if code, out := cli("shed", "150%"); code == 0 || !strings.Contains(out, "want off, a fraction from 0 to 1") {
		t.Errorf("shed 150%%: exit %d; want a usage error naming the range:\n%s", code, out)
	}
	code, out := cli("shed", "0.5", "-reason", "risky deploy")
	if code != 0 || !strings.Contains(out, "sheds 50% of new clients") {
		t.Fatalf("shed 0.5: exit %d:\n%s", code, out)
	}
	testenv.EventuallyEvery(t, 5*time.Second, 100*time.Millisecond, "shed in force (metrics)", func() bool {
		return metricValue(httpGet(t, s.web+"/metrics"), "spdu_shed_fraction") == 0.5
	})
	const n = 400
	refused := shedCount(t, s.DNSAddr, n)
	t.Logf("shed 0.5: %d of %d queries REFUSED", refused, n)
	if refused < 150 || refused > 250 { // Binomial(400, 0.5): five sd
		t.Errorf("shed 0.5: %d of %d queries REFUSED; want about half", refused, n)
	}
	// /metrics is rendered at most once a second.
	testenv.EventuallyEvery(t, 5*time.Second, 100*time.Millisecond, "spdu_dns_shed_total to count the REFUSED answers", func() bool {
		return metricValue(httpGet(t, s.web+"/metrics"), "spdu_dns_shed_total") == float64(refused)
	})
	if code, out := cli("status"); code != 0 || !strings.Contains(out, `manual shed: 50% until shed off, reason "risky deploy"`) {
		t.Errorf("status: exit %d; output lacks the manual shed:\n%s", code, out)
	}
	if st := getStatus(t, s.web); st.Shed.Manual != 0.5 || st.Shed.Fraction != 0.5 || !st.Serving {
		t.Errorf("/status shed = %+v (serving %t); want the manual 0.5 in force, the site serving", st.Shed, st.Serving)
	}

	stopDaemon(t, d)
	d = startDaemon(t, s.CfgPath)
	waitServed(t, s.DNSAddr)
	if refused := shedCount(t, s.DNSAddr, 200); refused < 60 || refused > 140 {
		t.Errorf("after a restart: %d of 200 queries REFUSED; want the persisted shed 0.5 in force", refused)
	}
	if code, out := cli("shed", "off"); code != 0 || !strings.Contains(out, "sheds 0%") {
		t.Fatalf("shed off: exit %d:\n%s", code, out)
	}
	testenv.Eventually(t, 5*time.Second, "shed off in force", func() bool { return shedCount(t, s.DNSAddr, 20) == 0 })
	if refused := shedCount(t, s.DNSAddr, 200); refused != 0 {
		t.Errorf("after shed off: %d of 200 queries REFUSED", refused)
	}

	// A shed that ends by itself, across a restart.
	if code, out := cli("shed", "-for", "6s", "-reason", "short", "60%"); code != 0 {
		t.Fatalf("shed -for 6s 60%%: exit %d:\n%s", code, out)
	}
	set := time.Now()
	stopDaemon(t, d)
	startDaemon(t, s.CfgPath)
	waitServed(t, s.DNSAddr)
	if st := getStatus(t, s.web); time.Since(set) < 6*time.Second && (st.Shed.Manual != 0.6 || st.Shed.ManualReason != "short") {
		t.Errorf("after a restart within -for: /status shed %+v; want the manual 0.6 kept", st.Shed)
	}
	testenv.EventuallyEvery(t, 15*time.Second, 100*time.Millisecond, "the shed to expire", func() bool { return getStatus(t, s.web).Shed.Manual == 0 })
	if took := time.Since(set); took < 6*time.Second {
		t.Errorf("the 6s shed ended after %s", took)
	}
	if refused := shedCount(t, s.DNSAddr, 100); refused != 0 {
		t.Errorf("after the shed expired: %d of 100 queries REFUSED", refused)
	}
}
