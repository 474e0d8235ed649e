package resolvers

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Addresses of this package's tests (127.0.0.2 and 127.0.0.3 are the
// daemons' in the research test).
var (
	resolverIPs = [4]string{"127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.2.4"}
	stubPool    = []Nameserver{{Name: "alpha.domain.tld.", IP: "127.0.3.2"}, {Name: "beta.domain.tld.", IP: "127.0.3.3"}}
)

func TestZones(t *testing.T) {
	ds := &dns.DS{KeyTag: 12345, Algorithm: dns.ECDSAP256SHA256, DigestType: dns.SHA256, Digest: strings.Repeat("ab", 32)}
	zones, hints, err := Zones(HierarchyConfig{Pool: stubPool, PoolDS: []*dns.DS{ds}, CNAMETTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		".":        {". 3600 IN NS a.root.", "a.root. 3600 IN A 127.0.1.1", "tld. 3600 IN NS ns.tld.", "ns.tld. 3600 IN A 127.0.1.1"},
		"tld.":     {"domain.tld. 3600 IN NS ns.domain.tld.", "ns.domain.tld. 3600 IN A 127.0.1.1"},
		DomainZone: {"api.domain.tld. 30 IN CNAME api.pool.domain.tld.", "pool.domain.tld. 3600 IN NS alpha.domain.tld.", "pool.domain.tld. 3600 IN NS beta.domain.tld.", "alpha.domain.tld. 3600 IN A 127.0.3.2", "beta.domain.tld. 3600 IN A 127.0.3.3", "pool.domain.tld. 3600 IN DS 12345 13 2 " + strings.Repeat("AB", 32)},
	}
	for zone, rrs := range want {
		var got []string
		zp := dns.NewZoneParser(strings.NewReader(zones[zone]), "", "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			got = append(got, strings.ReplaceAll(rr.String(), "\t", " "))
		}
		if err := zp.Err(); err != nil {
			t.Fatalf("zone %s does not parse: %v\n%s", zone, err, zones[zone])
		}
		for _, rr := range rrs {
			if !slices.Contains(got, rr) {
				t.Errorf("zone %s lacks %q; has\n%s", zone, rr, strings.Join(got, "\n"))
			}
		}
	}
	if !strings.Contains(hints, "a.root. 3600000 IN A 127.0.1.1") {
		t.Errorf("root hints do not name the local root:\n%s", hints)
	}

	for _, bad := range []HierarchyConfig{
		{},
		{Pool: []Nameserver{{Name: "ns.example.", IP: "127.0.0.2"}}},
		{Pool: []Nameserver{{Name: "alpha.domain.tld.", IP: "192.0.2.1"}}},
		{Pool: stubPool, IP: "10.0.0.1"},
		{Pool: stubPool, CNAMETTL: 1500 * time.Millisecond},
	} {
		if _, _, err := Zones(bad); err == nil {
			t.Errorf("Zones(%+v) accepted an invalid configuration", bad)
		}
	}
}

// TestResolveThroughHierarchy: each of the four resolvers iterates from the
// local root to a stub nameserver of the pool zone and resolves the service
// name's CNAME to the stub's address; each queries from its own address.
func TestResolveThroughHierarchy(t *testing.T) {
	h := StartHierarchy(t, HierarchyConfig{Pool: stubPool[:1]})
	stub := StartStub(t, StubConfig{IP: stubPool[0].IP, Nameservers: stubPool[:1]})
	rs := StartAll(t, h, resolverIPs, Options{})
	for _, r := range rs {
		t.Run(string(r.Kind), func(t *testing.T) {
			res := Resolve(r.Addr, ServiceName, dns.TypeA, 3*time.Second)
			if !res.OK() || !slices.Equal(res.Addrs, []string{stubPool[0].IP}) {
				t.Fatalf("%s resolved %s: rcode %d, %v; want %s\n%s", r.Kind, ServiceName, res.Rcode, res.Addrs, stubPool[0].IP, r.Output())
			}
			if res.TTL > 5 {
				t.Errorf("TTL %d, want at most the stub's 5", res.TTL)
			}
			if len(stub.QueriesFrom(r.IP, time.Time{})) == 0 {
				t.Errorf("the stub saw no query from %s's address %s", r.Kind, r.IP)
			}
		})
	}
}

// TestTrustAnchor: with a trust anchor for the pool zone (a DNSKEY, which
// the harness turns into a DS), every resolver validates below it and only
// there: the unsigned stub's answer is bogus (SERVFAIL), while a name of
// the unsigned parent still resolves (the real root's anchor is not in
// force against the local root).
func TestTrustAnchor(t *testing.T) {
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: PoolZone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	if _, err := key.Generate(256); err != nil {
		t.Fatal(err)
	}
	h := StartHierarchy(t, HierarchyConfig{Pool: stubPool[:1]})
	StartStub(t, StubConfig{IP: stubPool[0].IP, Nameservers: stubPool[:1]})
	rs := StartAll(t, h, resolverIPs, Options{TrustAnchorKeys: []*dns.DNSKEY{key}})
	for _, r := range rs {
		t.Run(string(r.Kind), func(t *testing.T) {
			if res := Resolve(r.Addr, "alpha."+DomainZone, dns.TypeA, 3*time.Second); !res.OK() {
				t.Errorf("alpha.%s outside the anchor's zone: rcode %d, %v; want its address", DomainZone, res.Rcode, res.Addrs)
			}
			if res := Resolve(r.Addr, PoolServiceName, dns.TypeA, 3*time.Second); res.Rcode != dns.RcodeServerFailure {
				t.Errorf("%s below the anchor, unsigned: rcode %d, %v; want SERVFAIL (bogus)", PoolServiceName, res.Rcode, res.Addrs)
			}
		})
	}
}
