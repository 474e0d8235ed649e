package dnsserve

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// benchClient is the client address of direct respond calls.
var benchClient = netip.MustParseAddrPort("192.0.2.99:5353")

// fastCases are the hot-path queries: the service name's A, NODATA,
// NXDOMAIN, each without and with EDNS.
func fastCases() []struct {
	name  string
	qname string
	qtype uint16
	edns  bool
} {
	return []struct {
		name  string
		qname string
		qtype uint16
		edns  bool
	}{
		{"A", fqdn("api"), dns.TypeA, false},
		{"A+edns", fqdn("api"), dns.TypeA, true},
		{"NODATA", fqdn("api"), dns.TypeAAAA, false},
		{"NODATA+edns", fqdn("api"), dns.TypeAAAA, true},
		{"NXDOMAIN", fqdn("nope"), dns.TypeA, false},
		{"NXDOMAIN+edns", fqdn("nope"), dns.TypeA, true},
	}
}

// newBenchServer returns a serving Server without sockets, with rate
// limiting at rate (negative: off).
func newBenchServer(tb testing.TB, rate int) *Server {
	tb.Helper()
	cfg := testConfig()
	cfg.RRL.Rate = rate
	cfg.Identity = "site-a"
	s, err := New(zerolog.Nop(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	s.setServing(true)
	return s
}

// TestFastPathMatchesSlowPath checks that every precomputed answer is what
// the slow path answers, byte for byte, for all owners and types, mixed
// case, with and without EDNS, serving its own records, serving pool sets
// (every variant) and withdrawn.
func TestFastPathMatchesSlowPath(t *testing.T) {
	s := newBenchServer(t, -1)
	fixed := time.Unix(1_700_000_000, 0)
	s.clock = func() time.Time { return fixed }
	names := []string{testZone, fqdn("api"), "ApI.pOOL.example.TEST.", fqdn("v6"), fqdn("both"), fqdn("x"),
		fqdn("a.x"), fqdn("ns2"), fqdn("nope"), "Deep.NOPE.pool.example.test.", "example.test.", "org.", "."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeSOA, dns.TypeANY, dns.TypeTXT, dns.TypeMX, dns.TypeCAA}
	x, y := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	v6 := netip.MustParseAddr("2001:db8::77")
	pool := Answers{Sets: []AddressSet{{A: []netip.Addr{x, y}, AAAA: []netip.Addr{v6}}, {A: []netip.Addr{y, x}, AAAA: []netip.Addr{v6}}, {A: []netip.Addr{x, y}}}, TTL: 2 * time.Second}
	for _, ans := range []Answers{{}, pool, {Refuse: true}} {
		if err := s.SetAnswers(ans); err != nil {
			t.Fatal(err)
		}
		serving := !ans.Refuse
		for vi := range max(1, len(s.snap.Load().variants)) {
			for _, name := range names {
				for _, qtype := range types {
					for _, edns := range []int{0, 1, 2} {
						m := query(name, qtype)
						m.RecursionDesired = true
						if edns > 0 {
							m.SetEdns0(1232, edns == 2)
							opt := m.IsEdns0()
							opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID},
								&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
						}
						msg := mustPack(t, m)
						var q fastQuery
						if !parseFast(msg, &q) {
							t.Fatalf("%s %s edns=%d: not on the fast path", name, dns.TypeToString[qtype], edns)
						}
						for _, shed := range []bool{false, true} {
							fast := s.respondFast(nil, msg, &q, s.snap.Load(), vi, shed, benchClient, false)
							slow := s.respondSlow(nil, msg, s.snap.Load(), vi, shed, benchClient, false)
							if string(fast) != string(slow) {
								t.Errorf("serving=%t variant %d shed=%t %s %s edns=%d:\nfast %x\nslow %x", serving, vi, shed, name, dns.TypeToString[qtype], edns, fast, slow)
							}
						}
					}
				}
			}
		}
	}
}

// poolAnswers are 64 pool orderings of three sites' addresses, as the
// daemon's publisher hands them over in pool mode.
func poolAnswers() Answers {
	sites := [][]netip.Addr{{netip.MustParseAddr("198.51.100.1")}, {netip.MustParseAddr("198.51.100.2")}, {netip.MustParseAddr("198.51.100.3")}}
	var a Answers
	for i := range 64 {
		var set AddressSet
		for j := range sites {
			set.A = append(set.A, sites[(i+j)%3]...)
		}
		a.Sets = append(a.Sets, set)
	}
	return a
}

// TestFastPathAllocs asserts the zero-allocation target of issue 4, with
// the own records and with pool answers (a random variant per query).
func TestFastPathAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters allocate")
	}
	for _, c := range []struct {
		rate int
		pool bool
		shed float64
	}{{-1, false, 0}, {1 << 30, false, 0}, {-1, true, 0}, {-1, false, 0.5}, {-1, true, 0.5}} {
		rate := c.rate
		s := newBenchServer(t, rate)
		var ans Answers
		if c.pool {
			ans = poolAnswers()
		}
		ans.Shed = c.shed
		if err := s.SetAnswers(ans); err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 0, maxTCPReply)
		for _, c := range fastCases() {
			m := query(c.qname, c.qtype)
			if c.edns {
				m.SetEdns0(1232, true)
			}
			msg := mustPack(t, m)
			if allocs := testing.AllocsPerRun(100, func() { s.respond(out, msg, benchClient, false) }); allocs != 0 {
				t.Errorf("rate %d shed %v %s: %v allocations per query; want 0", rate, ans.Shed, c.name, allocs)
			}
		}
	}
}

// BenchmarkRespond measures the whole query path short of the socket:
// bytes in, bytes out. Rate limiting is off, as in the QPS benchmark; the
// rrl variants pay for one bucket check per query.
func BenchmarkRespond(b *testing.B) {
	for _, rrl := range []bool{false, true} {
		rate := -1
		suffix := ""
		if rrl {
			rate, suffix = 1<<30, "+rrl"
		}
		s := newBenchServer(b, rate)
		out := make([]byte, 0, maxTCPReply)
		for _, c := range fastCases() {
			m := query(c.qname, c.qtype)
			if c.edns {
				m.SetEdns0(1232, false)
			}
			msg := mustPack(b, m)
			b.Run(c.name+suffix, func(b *testing.B) {
				b.ReportAllocs()
				var n int
				for b.Loop() {
					n = len(s.respond(out, msg, benchClient, false))
				}
				b.ReportMetric(float64(n), "bytes/reply")
			})
		}
	}
}

// BenchmarkRespondSlowPath is the same A query through miekg/dns, for
// comparison.
func BenchmarkRespondSlowPath(b *testing.B) {
	s := newBenchServer(b, -1)
	out := make([]byte, 0, maxTCPReply)
	msg := mustPack(b, query(fqdn("api"), dns.TypeA))
	b.ReportAllocs()
	for b.Loop() {
		s.respondSlow(out, msg, s.snap.Load(), 0, false, benchClient, false)
	}
}

// TestHideIdentity checks that NSID and the CHAOS identity can be turned off.
func TestHideIdentity(t *testing.T) {
	for _, hide := range []bool{false, true} {
		cfg := testConfig()
		cfg.Identity, cfg.HideIdentity = "site-b", hide
		s, err := New(zerolog.Nop(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.setServing(true)
		nsid := dq(fqdn("api"), dns.TypeA, withOption(&dns.EDNS0_NSID{Code: dns.EDNS0NSID}))
		r := summarizeWire(s.respond(nil, mustPack(t, nsid), benchClient, false))
		chaos := summarizeWire(s.respond(nil, mustPack(t, dq("id.server.", dns.TypeTXT, withClass(dns.ClassCHAOS))), benchClient, false))
		wantNSID, wantChaos := "site-b", "NOERROR"
		if hide {
			wantNSID, wantChaos = "", "REFUSED"
		}
		if r.NSID != wantNSID || chaos.Rcode != wantChaos {
			t.Errorf("HideIdentity %t: NSID %q, CHAOS id.server. %s; want %q, %s", hide, r.NSID, chaos.Rcode, wantNSID, wantChaos)
		}
	}
}
