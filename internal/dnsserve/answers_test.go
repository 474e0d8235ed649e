package dnsserve

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// TestSetAnswersPool: pool answers over real sockets: every service name
// hands out the set's addresses with the pool TTL, SOA keeps the zone TTL;
// a reorder keeps the serial, a new address set or a refusal moves it; the
// first address follows the sets' shares; a bad set is refused and keeps
// the answers in force.
func TestSetAnswersPool(t *testing.T) {
	s, udp, _ := startServer(t, testConfig(), true)
	x, y := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	v6addr := netip.MustParseAddr("2001:db8::9")
	var sets []AddressSet
	for i := range 64 {
		if i < 46 {
			sets = append(sets, AddressSet{A: []netip.Addr{x, y}})
		} else {
			sets = append(sets, AddressSet{A: []netip.Addr{y, x}})
		}
	}
	if err := s.SetAnswers(Answers{Sets: sets, TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	serial := s.Serial()
	first := map[string]int{}
	const n = 3000
	for range n {
		r := exchange(t, "udp", udp, query("api."+testZone, dns.TypeA))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 || r.Answer[0].Header().Ttl != 1 {
			t.Fatalf("pool answer %v: want 2 addresses with TTL 1", r)
		}
		first[r.Answer[0].(*dns.A).A.String()]++
	}
	share := float64(first[x.String()]) / n
	if d := share - 46.0/64; d > 0.03 || d < -0.03 {
		t.Errorf("first address %s in %.3f of answers, want %.3f +- 0.03", x, share, 46.0/64)
	}
	t.Logf("first address shares: %v of %d (want %.3f)", first, n, 46.0/64)
	// Every service name, and NODATA for AAAA.
	if r := exchange(t, "udp", udp, query("both."+testZone, dns.TypeAAAA)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || !r.Authoritative {
		t.Errorf("AAAA without pool AAAA addresses: %v, want NODATA", r)
	}
	if r := exchange(t, "udp", udp, query(testZone, dns.TypeSOA)); r.Answer[0].Header().Ttl != testTTL {
		t.Errorf("SOA TTL %d, want the zone TTL %d", r.Answer[0].Header().Ttl, testTTL)
	}
	// A reorder keeps the serial; a new set moves it; refuse withdraws.
	if err := s.SetAnswers(Answers{Sets: sets[40:], TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	if s.Serial() != serial {
		t.Errorf("reorder moved the serial %d -> %d", serial, s.Serial())
	}
	if err := s.SetAnswers(Answers{Sets: []AddressSet{{A: []netip.Addr{y}}}, TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	if int32(s.Serial()-serial) <= 0 {
		t.Errorf("new address set kept the serial %d", serial)
	}
	serial = s.Serial()
	for _, bad := range []Answers{
		{Sets: []AddressSet{{A: []netip.Addr{v6addr}}}},
		{Sets: []AddressSet{{A: []netip.Addr{y, y}}}},
		{Sets: []AddressSet{{A: []netip.Addr{y}}}, TTL: 1500 * time.Millisecond},
	} {
		if err := s.SetAnswers(bad); err == nil {
			t.Errorf("SetAnswers(%+v) accepted", bad)
		}
	}
	if s.Serial() != serial {
		t.Error("a refused SetAnswers moved the serial")
	}
	if r := exchange(t, "udp", udp, query("api."+testZone, dns.TypeA)); len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(y.AsSlice()) {
		t.Errorf("after the new set: %v", r)
	}
	if err := s.SetAnswers(Answers{Refuse: true}); err != nil {
		t.Fatal(err)
	}
	if r := exchange(t, "udp", udp, query("api."+testZone, dns.TypeA)); r.Rcode != dns.RcodeRefused || s.Serving() {
		t.Errorf("refuse: %v, serving %v", r, s.Serving())
	}
}

// BenchmarkSetAnswersPool measures publishing a pool answer of three sites
// in 64 orderings: every variant's answers precomputed in wire format.
func BenchmarkSetAnswersPool(b *testing.B) {
	s, err := New(zerolog.Nop(), testConfig())
	if err != nil {
		b.Fatal(err)
	}
	a := poolAnswers()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.TTL = time.Duration(1+i%2) * time.Second // a new serial each time
		if err := s.SetAnswers(a); err != nil {
			b.Fatal(err)
		}
	}
}
