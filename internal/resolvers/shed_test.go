package resolvers

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/shed"
	"github.com/spdu/spdu-haproxy/internal/status"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// loadSample is one client request: a resolution of PoolServiceName
// through one resolver, then an HTTP GET on a new connection to the
// address it gave.
type loadSample struct {
	at       time.Time     // when the resolution started
	resolver int           // index in the test's resolvers
	site     string        // the address handed out, "" when none
	took     time.Duration // resolution and HTTP request
	err      string        // "" for a 200 reply
}

// loadGen is an open-loop client load: rate requests per second whatever
// the replies, spread over the resolvers in turn, at most maxInflight at a
// time (more count as errors), each bounded by its timeouts.
type loadGen struct {
	background
	resolvers []*Resolver
	port      int
	client    *http.Client
	inflight  atomic.Int64
	samples   recorded[loadSample]
}

const maxInflight = 2000

func startLoad(t *testing.T, rs []*Resolver, httpPort, rate int) *loadGen {
	g := &loadGen{background: newBackground(), resolvers: rs, port: httpPort,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	g.wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-g.stop:
				return
			case <-tick.C:
			}
			ri := i % len(rs)
			if g.inflight.Add(1) > maxInflight {
				g.inflight.Add(-1)
				g.record(loadSample{at: time.Now(), resolver: ri, err: "client: too many in flight"})
				continue
			}
			g.wg.Go(func() {
				defer g.inflight.Add(-1)
				g.record(g.one(ri))
			})
		}
	})
	t.Cleanup(g.Stop)
	return g
}

func (g *loadGen) one(ri int) loadSample {
	s := loadSample{at: time.Now(), resolver: ri}
	res := Resolve(g.resolvers[ri].Addr, PoolServiceName, dns.TypeA, time.Second)
	if !res.OK() {
		s.took, s.err = time.Since(s.at), "dns: "+rcodeName(res.Rcode)
		return s
	}
	s.site = res.Addrs[0]
	resp, err := g.client.Get("http://" + net.JoinHostPort(s.site, strconv.Itoa(g.port)) + "/")
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
	}
	s.took = time.Since(s.at)
	if err != nil {
		s.err = err.Error()
	}
	return s
}

func rcodeName(rc int) string {
	if rc == NoReply {
		return "no reply"
	}
	return dns.RcodeToString[rc]
}

func (g *loadGen) record(s loadSample) { g.samples.add(s) }

// between returns the samples started in [from, to). (Stop, from
// background, waits for the requests in flight, each bounded by its
// timeouts.)
func (g *loadGen) between(from, to time.Time) []loadSample {
	return g.samples.filter(func(s loadSample) bool { return within(s.at, from, to) })
}

// siteReading is one look at alpha: its daemon's load and shed fraction
// (status), and its HAProxy backend's queue.
type siteReading struct {
	at        time.Time
	u, p      float64
	qcur      int
	readError string
}

// monitor reads alpha every 250 ms until stopped.
type monitor struct {
	background
	readings recorded[siteReading]
}

func startMonitor(t *testing.T, statusURL string, h *testenv.HAProxy) *monitor {
	m := &monitor{background: newBackground()}
	m.wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		cl := &http.Client{Timeout: time.Second}
		for {
			r := siteReading{at: time.Now(), qcur: -1}
			var doc status.Document
			if resp, err := cl.Get(statusURL); err != nil {
				r.readError = err.Error()
			} else {
				err = json.NewDecoder(resp.Body).Decode(&doc)
				resp.Body.Close()
				if err != nil || doc.Detail == nil {
					r.readError = fmt.Sprintf("status: %v", err)
				} else {
					r.u, r.p = doc.Shed.Utilization, doc.Shed.Fraction
				}
			}
			if out, err := h.Command("show stat api 6 -1"); err == nil {
				if st, err := haproxy.ParseStat([]byte(out), "api"); err == nil {
					r.qcur = st.Qcur
				}
			}
			m.readings.add(r)
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	})
	t.Cleanup(m.Stop)
	return m
}

// between returns the readings taken in [from, to) that succeeded.
func (m *monitor) between(from, to time.Time) []siteReading {
	return m.readings.filter(func(r siteReading) bool { return within(r.at, from, to) && r.readError == "" })
}

// phaseStats summarises one measured window.
type phaseStats struct {
	name             string
	requests, errors int
	alphaShare       float64 // of the requests that got an address
	p50, p99         time.Duration
	// meanU is the mean utilization counted up to shed.UtilizationCap, as
	// the controller counts it; busy the mean share of server slots in
	// use (u up to 1); overloaded the share of readings with requests
	// queued.
	meanU, busy, overloaded float64
	meanP                   float64
	meanQ, maxQ             float64
	readings                int
}

func summarizeLoad(name string, ss []loadSample, rs []siteReading, alphaIP string) phaseStats {
	st := phaseStats{name: name, requests: len(ss), readings: len(rs)}
	var took []time.Duration
	resolved, alpha := 0, 0
	for _, s := range ss {
		if s.err != "" {
			st.errors++
		}
		if s.site != "" {
			resolved++
			if s.site == alphaIP {
				alpha++
			}
		}
		took = append(took, s.took)
	}
	if resolved > 0 {
		st.alphaShare = float64(alpha) / float64(resolved)
	}
	slices.Sort(took)
	if len(took) > 0 {
		st.p50, st.p99 = took[len(took)/2], took[len(took)*99/100]
	}
	for _, r := range rs {
		st.meanU += min(r.u, shed.UtilizationCap)
		st.busy += min(r.u, 1)
		if r.qcur > 0 {
			st.overloaded++
		}
		st.meanP += r.p
		st.meanQ += float64(max(r.qcur, 0))
		st.maxQ = max(st.maxQ, float64(r.qcur))
	}
	if n := float64(len(rs)); n > 0 {
		st.meanU, st.busy, st.overloaded, st.meanP, st.meanQ = st.meanU/n, st.busy/n, st.overloaded/n, st.meanP/n, st.meanQ/n
	}
	return st
}

func (st phaseStats) String() string {
	return fmt.Sprintf("| %-14s | %5.1f%% | %4.2f | %4.2f | %4.0f%% | %4.2f | %5.1f / %3.0f | %6s | %6s | %5d of %5d |", st.name, 100*st.alphaShare, st.meanU,
		st.busy, 100*st.overloaded, st.meanP, st.meanQ, st.maxQ, st.p50.Round(time.Millisecond), st.p99.Round(time.Millisecond), st.errors, st.requests)
}

// shareByKind returns alpha's share of the resolved requests per resolver
// kind.
func shareByKind(ss []loadSample, rs []*Resolver, alphaIP string) map[Kind]float64 {
	alpha, all := map[Kind]int{}, map[Kind]int{}
	for _, s := range ss {
		if s.site == "" {
			continue
		}
		k := rs[s.resolver].Kind
		all[k]++
		if s.site == alphaIP {
			alpha[k]++
		}
	}
	out := map[Kind]float64{}
	for k, n := range all {
		out[k] = float64(alpha[k]) / float64(n)
	}
	return out
}

// Shedding test parameters. Alpha's five servers take one request at a
// time (maxconn 1) and answer after 100 ms: about 50 requests per second
// in all. The clients offer 130 per second, so alpha is overloaded with
// anything near half of them; beta's servers answer at once.
const (
	shedRate      = 130 // requests per second offered
	shedLightRate = 20  // after the load stops
	alphaMaxConn  = 1
	alphaDelay    = 100 * time.Millisecond
)

// TestLoadShedding is issue 16's end-to-end proof: two self-mode sites,
// alpha (127.0.0.2) small and slow and beta (127.0.0.3) fast, fifteen
// real recursive resolvers (twelve unbound, a BIND, a PowerDNS Recursor, a
// Knot Resolver) iterating from the local hierarchy, and an open-loop client
// load that resolves api.pool.domain.tld through them and then sends an
// HTTP request to the address it got. It measures alpha's share of the
// resolutions, its utilization and queue, and the clients' latency and
// errors, with shedding off, then on (the same daemon, reloaded), then
// with the load gone. Shedding must hold alpha's utilization near its
// target, lower the clients' p99 and errors, and give alpha its share
// back when the load stops. The table is logged; README "Load shedding"
// quotes it.
func TestLoadShedding(t *testing.T) {
	alphaIP, betaIP := sitePool[0].IP, sitePool[1].IP
	h := StartHierarchy(t, HierarchyConfig{Pool: sitePool})
	ss := newSites(t, "self", time.Second)
	sites := map[string]*testenv.Site{}
	procs := map[string]*testenv.Process{}
	var alphaStatus string
	for _, name := range []string{"alpha", "beta"} {
		o := ss.Opts(t, name)
		o.HAProxy.TLSCert = "" // plain HTTP: the clients' cost stays small
		o.HAProxy.AgentInter, o.HAProxy.Connect = 500*time.Millisecond, 300*time.Millisecond
		o.Daemon.Frontend = "www"
		if name == "alpha" {
			o.Delays = []time.Duration{alphaDelay, alphaDelay, alphaDelay, alphaDelay, alphaDelay}
			o.HAProxy.MaxConn, o.HAProxy.Queue = alphaMaxConn, 2*time.Second
			alphaStatus = "http://" + o.Daemon.Metrics + "/status"
		}
		sites[name] = testenv.StartSite(t, o)
		procs[name] = testenv.StartBinary(t, "run", "-config", sites[name].CfgPath)
	}
	for name, ip := range map[string]string{"alpha": alphaIP, "beta": betaIP} {
		waitAnswers(t, sites[name].DNSAddr, name+" serves", 15*time.Second, ip)
	}

	// Unbound on 127.0.0.10 to .21; BIND .31, PowerDNS Recursor .30,
	// Knot Resolver .32.
	rs := StartMix(t, h, 12, [4]string{"127.0.0.10", "127.0.0.31", "127.0.0.30", "127.0.0.32"}, Options{})

	mon := startMonitor(t, alphaStatus, sites["alpha"].HAProxy)
	load := startLoad(t, rs, ss.HTTPSPort, shedRate)

	const (
		settle    = 5 * time.Second  // before measuring shedding off
		offFor    = 25 * time.Second // shedding off, from the start of the load
		converge  = 20 * time.Second // after shedding is turned on
		onFor     = 55 * time.Second
		recoverIn = 20 * time.Second // after the load stops
		lightFor  = 30 * time.Second
	)
	start := time.Now()
	hold(offFor)
	offEnd := time.Now()

	// Shedding on: the same daemon, reloaded.
	c := sites["alpha"].Config
	c.Extra += "[shed]\nenabled = true\n"
	testenv.Reload(t, procs["alpha"], sites["alpha"].CfgPath, c.Text(t), "configuration reloaded")
	onStart := time.Now()
	hold(onFor)
	onEnd := time.Now()
	load.Stop()

	light := startLoad(t, rs, ss.HTTPSPort, shedLightRate)
	hold(lightFor)
	lightEnd := time.Now()
	light.Stop()
	mon.Stop()

	off := summarizeLoad("shedding off", load.between(start.Add(settle), offEnd), mon.between(start.Add(settle), offEnd), alphaIP)
	on := summarizeLoad("shedding on", load.between(onStart.Add(converge), onEnd), mon.between(onStart.Add(converge), onEnd), alphaIP)
	after := summarizeLoad("load stopped", light.between(onEnd.Add(recoverIn), lightEnd), mon.between(onEnd.Add(recoverIn), lightEnd), alphaIP)
	t.Logf("alpha: 5 servers, maxconn %d, %s each; offered %d requests/s (then %d) through %d resolvers; dns.ttl %s; shed target 0.8",
		alphaMaxConn, alphaDelay, shedRate, shedLightRate, len(rs), ss.TTL)
	t.Logf("| %-14s | %6s | %4s | %4s | %5s | %4s | %11s | %6s | %6s | %14s |", "phase", "alpha", "u", "busy", "queue", "p", "queue (max)", "p50", "p99", "errors")
	for _, st := range []phaseStats{off, on, after} {
		t.Logf("%s", st)
	}

	// The controller's trace: one line every 2 s from the reload on.
	var trace []string
	for _, r := range mon.between(onStart, onEnd) {
		if len(trace) == 0 || r.at.Sub(onStart) >= time.Duration(len(trace))*2*time.Second {
			trace = append(trace, fmt.Sprintf("%2.0fs u=%.2f p=%.2f q=%d", r.at.Sub(onStart).Seconds(), r.u, r.p, r.qcur))
		}
	}
	t.Logf("controller trace after the reload:\n  %s", strings.Join(trace, "\n  "))

	// What each kind of resolver delivers: alpha's share with shedding on
	// against off, beside the fraction the daemon shed.
	offShare := shareByKind(load.between(start.Add(settle), offEnd), rs, alphaIP)
	onShare := shareByKind(load.between(onStart.Add(converge), onEnd), rs, alphaIP)
	for _, k := range Kinds() {
		delivered := 0.0
		if offShare[k] > 0 {
			delivered = 1 - onShare[k]/offShare[k]
		}
		t.Logf("%-14s alpha share off %5.1f%%, on %5.1f%%: delivered shed %.2f (daemon's mean p %.2f)",
			k, 100*offShare[k], 100*onShare[k], delivered, on.meanP)
	}

	if off.meanU <= 1 || off.errors == 0 {
		t.Errorf("shedding off: alpha utilization %.2f, %d errors; the test needs alpha overloaded (above 1, with errors)", off.meanU, off.errors)
	}
	if on.meanU < 0.55 || on.meanU > 1.05 || on.overloaded > off.overloaded/2 {
		t.Errorf("shedding on: alpha's mean utilization %.2f, queue %.0f%% of the time; want it near the 0.8 target (0.55 to 1.05), queued at most half as often as with shedding off (%.0f%%)",
			on.meanU, 100*on.overloaded, 100*off.overloaded)
	}
	if on.p99 >= off.p99 || on.errors*2 > off.errors {
		t.Errorf("shedding on: p99 %s and %d errors; want both below shedding off's %s and %d (errors at most half)", on.p99, on.errors, off.p99, off.errors)
	}
	if on.alphaShare >= off.alphaShare {
		t.Errorf("shedding on: alpha's share %.1f%%; want it below shedding off's %.1f%%", 100*on.alphaShare, 100*off.alphaShare)
	}
	if after.meanP > 0.05 || after.alphaShare < on.alphaShare+0.05 {
		t.Errorf("after the load stopped: shed %.2f, alpha's share %.1f%%; want shedding over and the share back up from %.1f%%",
			after.meanP, 100*after.alphaShare, 100*on.alphaShare)
	}
	if t.Failed() {
		for name, p := range procs {
			t.Logf("%s daemon log:\n%s", name, p.Output())
		}
	}
}

// kindShares returns, per resolver kind, the share of the OK results
// sampled in [from, to) that handed out ip, and how many there were.
func kindShares(s *Sampler, rs []*Resolver, ip string, from, to time.Time) (map[Kind]float64, map[Kind]int) {
	hit, all := map[Kind]int{}, map[Kind]int{}
	for _, r := range rs {
		for _, res := range s.Between(r, from, to) {
			if !res.OK() {
				continue
			}
			all[r.Kind]++
			if res.Has(ip) {
				hit[r.Kind]++
			}
		}
	}
	out := map[Kind]float64{}
	for k, n := range all {
		out[k] = float64(hit[k]) / float64(n)
	}
	return out, all
}

// TestShedDeliveredByResolver measures what each kind of resolver does
// with a site's shed fraction and with an answer delay, the two ways a
// nameserver can steer resolvers (issue 16, item 3). Alpha is the real
// daemon (self mode, dns.ttl 1s); beta's nameserver is a stub whose reply
// delay the test sets. Clients sample api.pool.domain.tld every 100 ms
// through six unbound, a BIND, a PowerDNS Recursor and a Knot Resolver:
//
//  1. both nameservers equally fast: how each kind splits its queries;
//  2. beta 50 ms slower: what an answer delay does (the seed's "how
//     quickly");
//  3. the same, with alpha shedding 0.5 (`spdu-haproxy shed 0.5`): the
//     shed each kind delivers, 1 - share(3) / share(2).
//
// Must hold: no resolver fails a query; a shed fraction of 0.5 moves part
// of unbound's clients (0.1 to 0.8) and at least 0.3 of PowerDNS
// Recursor's; an answer delay of 50 ms moves BIND, PowerDNS Recursor and
// Knot Resolver to the faster nameserver (at least 80%) and leaves
// unbound's split where it was (its RTT band is 400 ms): a switch, not a
// dial, so the daemon has no answer delay. What BIND and Knot Resolver
// deliver is logged, not asserted: one instance of a kind is a sample of
// one, and theirs varied from run to run. README "Load shedding" quotes
// the table.
func TestShedDeliveredByResolver(t *testing.T) {
	alphaIP, betaIP := sitePool[0].IP, sitePool[1].IP
	h := StartHierarchy(t, HierarchyConfig{Pool: sitePool})
	ss := newSites(t, "self", time.Second)
	o := ss.Opts(t, "alpha")
	o.HAProxy.TLSCert = ""
	alpha := testenv.StartSite(t, o)
	testenv.StartBinary(t, "run", "-config", alpha.CfgPath)
	beta := StartStub(t, StubConfig{IP: betaIP, Nameservers: sitePool, TTL: time.Second})
	waitAnswers(t, alpha.DNSAddr, "alpha serves", 15*time.Second, alphaIP)

	rs := StartMix(t, h, 6, [4]string{"127.0.0.40", "127.0.0.46", "127.0.0.47", "127.0.0.48"}, Options{}) // unbound .40 to .45
	smp := StartSampler(t, SamplerConfig{Name: PoolServiceName, Every: 100 * time.Millisecond, Timeout: 2 * time.Second}, rs...)

	const phase = 25 * time.Second
	t0 := time.Now()
	hold(phase)
	t1 := time.Now()
	beta.SetDelay(50 * time.Millisecond)
	hold(phase)
	t2 := time.Now()
	if code, out := testenv.RunBinary(t, "shed", "-config", alpha.CfgPath, "0.5"); code != 0 {
		t.Fatalf("shed 0.5: exit %d:\n%s", code, out)
	}
	hold(phase)
	t3 := time.Now()
	smp.Stop()

	// The first seconds of each phase are the resolvers' caches turning
	// over: left out.
	const skip = 3 * time.Second
	equal, _ := kindShares(smp, rs, alphaIP, t0.Add(skip), t1)
	delayed, _ := kindShares(smp, rs, alphaIP, t1.Add(skip), t2)
	shedding, _ := kindShares(smp, rs, alphaIP, t2.Add(skip), t3)
	t.Logf("alpha's share of each kind's answers (dns.ttl 1s, a query every 100 ms per resolver):")
	t.Logf("| %-14s | %13s | %15s | %20s | %15s |", "resolver", "equal speed", "beta +50 ms", "+ alpha shed 0.5", "delivered shed")
	delivered := map[Kind]float64{}
	for _, k := range Kinds() {
		if delayed[k] > 0 {
			delivered[k] = 1 - shedding[k]/delayed[k]
		}
		t.Logf("| %-14s | %12.0f%% | %14.0f%% | %19.0f%% | %15.2f |", k, 100*equal[k], 100*delayed[k], 100*shedding[k], delivered[k])
	}
	failed := 0
	for _, r := range rs {
		for _, res := range smp.Results(r) {
			if !res.OK() {
				failed++
				t.Logf("%s: %s at %s", r.Kind, rcodeName(res.Rcode), res.Sent.Sub(t0).Round(time.Millisecond))
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d resolutions failed; want none", failed)
	}
	// Only what held in every run is asserted: unbound (six instances)
	// delivers part of the shed, PowerDNS Recursor (which throttles a
	// nameserver after a REFUSED) a good part of it. BIND's and Knot
	// Resolver's single instances varied from run to run (Knot Resolver
	// from 0.69 down to none in two runs of five, when it kept asking the
	// faster alpha again): logged.
	if d := delivered[Unbound]; d < 0.1 || d > 0.8 {
		t.Errorf("unbound delivered shed %.2f at 0.5; want part of its clients moved (0.1 to 0.8)", d)
	}
	if d := delivered[PowerDNS]; delayed[PowerDNS] >= 0.5 && d < 0.3 {
		t.Errorf("PowerDNS Recursor delivered shed %.2f at 0.5; want at least 0.3 (it throttles a nameserver after a REFUSED)", d)
	}
	for _, k := range []Kind{BIND, PowerDNS, Knot} {
		if delayed[k] < 0.8 {
			t.Errorf("%s sent %.0f%% of its queries to alpha with beta 50 ms slower; want at least 80%% (it prefers the faster nameserver)", k, 100*delayed[k])
		}
	}
	if diff := delayed[Unbound] - equal[Unbound]; diff > 0.2 || diff < -0.2 {
		t.Errorf("unbound's share of alpha moved from %.0f%% to %.0f%% with beta 50 ms slower; its RTT band should keep it", 100*equal[Unbound], 100*delayed[Unbound])
	}
}
