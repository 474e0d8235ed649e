package dnsserve

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSetPool: pool answers over real sockets: every service name hands out
// the variant's addresses with the pool TTL, SOA keeps the zone TTL; a
// reorder keeps the serial, a new address set or a refusal moves it; the
// first address follows the variants' shares.
func TestSetPool(t *testing.T) {
	s, udp, _ := startServer(t, testConfig(), true)
	x, y := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	var variants []AddressSet
	for i := range 64 {
		if i < 46 {
			variants = append(variants, AddressSet{A: []netip.Addr{x, y}})
		} else {
			variants = append(variants, AddressSet{A: []netip.Addr{y, x}})
		}
	}
	s.SetPool(PoolAnswer{Variants: variants, TTL: time.Second})
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
	s.SetPool(PoolAnswer{Variants: variants[40:], TTL: time.Second})
	if s.Serial() != serial {
		t.Errorf("reorder moved the serial %d -> %d", serial, s.Serial())
	}
	s.SetPool(PoolAnswer{Variants: []AddressSet{{A: []netip.Addr{y}}}, TTL: time.Second})
	if int32(s.Serial()-serial) <= 0 {
		t.Errorf("new address set kept the serial %d", serial)
	}
	if r := exchange(t, "udp", udp, query("api."+testZone, dns.TypeA)); len(r.Answer) != 1 || !r.Answer[0].(*dns.A).A.Equal(y.AsSlice()) {
		t.Errorf("after the new set: %v", r)
	}
	s.SetPool(PoolAnswer{Refuse: true})
	if r := exchange(t, "udp", udp, query("api."+testZone, dns.TypeA)); r.Rcode != dns.RcodeRefused || s.Serving() {
		t.Errorf("refuse: %v, serving %v", r, s.Serving())
	}
}
