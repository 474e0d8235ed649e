package dnssec

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const zone = "pool.domain.tld."

// testNow is the fake clock of the unit tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// mustRR parses one record in presentation format.
func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return rr
}

// newKey generates an own key of zone.
func newKey(t testing.TB, alg uint8) *Key {
	t.Helper()
	k, err := Generate(zone, alg)
	if err != nil {
		t.Fatalf("Generate(%d): %v", alg, err)
	}
	return k
}

// peerOf returns k as another site sees it: the public key only.
func peerOf(k *Key) *Key {
	p := *k
	p.Signer = nil
	return &p
}

// newKeySet builds a key set or fails the test.
func newKeySet(t testing.TB, own, peer []*Key) *KeySet {
	t.Helper()
	ks, err := NewKeySet(zone, own, peer)
	if err != nil {
		t.Fatalf("NewKeySet: %v", err)
	}
	return ks
}

// chainApex returns the apex of c as Deny sees it (c.apexW), a FQDN in
// presentation format; it replaces Chain.Apex, which only tests called.
func chainApex(t testing.TB, c *Chain) string {
	t.Helper()
	name, _, err := dns.UnpackDomainName(c.apexW, 0)
	if err != nil {
		t.Fatalf("unpack chain apex %x: %v", c.apexW, err)
	}
	return name
}

// testSOA is the apex SOA of the test zones: TTL 300, MINIMUM 60.
func testSOA(t testing.TB) *dns.SOA {
	return mustRR(t, zone+" 300 IN SOA ns1."+zone+" hostmaster.domain.tld. 2026030101 7200 3600 1209600 60").(*dns.SOA)
}

// testZone is a small zone as the DNS server holds it, unsigned: each
// element of rrsets is one RRset.
type testZone struct {
	soa    *dns.SOA
	rrsets [][]dns.RR
}

// smallZone returns the zone of the validator tests: apex SOA, NS, A and
// AAAA; in-zone nameservers; api and www with several addresses; a.x, so
// that x is an empty non-terminal; and the DNSKEY RRset of ks.
func smallZone(t testing.TB, ks *KeySet) testZone {
	t.Helper()
	z := testZone{soa: testSOA(t)}
	z.rrsets = append(z.rrsets, []dns.RR{z.soa})
	z.rrsets = append(z.rrsets, parseRRsets(t, `
@    300 IN NS   ns1
@    300 IN NS   ns2
@     30 IN A    192.0.2.1
@     30 IN AAAA 2001:db8::1
ns1  300 IN A    192.0.2.53
ns2  300 IN A    198.51.100.53
api   30 IN A    192.0.2.10
api   30 IN A    192.0.2.11
api   30 IN A    198.51.100.10
api   30 IN AAAA 2001:db8::10
api   30 IN AAAA 2001:db8:1::10
www   30 IN A    192.0.2.20
a.x   30 IN AAAA 2001:db8::20
`)...)
	if ks != nil {
		z.rrsets = append(z.rrsets, ks.DNSKEYs(3600))
	}
	return z
}

// parseRRsets parses master-file text relative to the zone and groups it
// into RRsets, in order of first appearance.
func parseRRsets(t testing.TB, text string) [][]dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), zone, "")
	var sets [][]dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		i := slices.IndexFunc(sets, func(set []dns.RR) bool {
			h := set[0].Header()
			return h.Name == rr.Header().Name && h.Rrtype == rr.Header().Rrtype
		})
		if i < 0 {
			sets = append(sets, nil)
			i = len(sets) - 1
		}
		sets[i] = append(sets[i], rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse zone text: %v", err)
	}
	return sets
}

// poolZone returns a zone of names names in pool mode with sites sites:
// each name has an A and an AAAA RRset with one address per site.
func poolZone(t testing.TB, ks *KeySet, names, sites int) testZone {
	z := testZone{soa: testSOA(t)}
	z.rrsets = append(z.rrsets, []dns.RR{z.soa},
		[]dns.RR{mustRR(t, zone+" 300 IN NS ns1."+zone)},
		[]dns.RR{mustRR(t, "ns1."+zone+" 300 IN A 192.0.2.53")})
	for n := 0; n < names; n++ {
		var a, aaaa []dns.RR
		for s := 0; s < sites; s++ {
			a = append(a, mustRR(t, fmt.Sprintf("name%d.%s 30 IN A 192.0.2.%d", n, zone, 10*s+n)))
			aaaa = append(aaaa, mustRR(t, fmt.Sprintf("name%d.%s 30 IN AAAA 2001:db8:%d::%d", n, zone, s, n)))
		}
		z.rrsets = append(z.rrsets, a, aaaa)
	}
	if ks != nil {
		z.rrsets = append(z.rrsets, ks.DNSKEYs(3600))
	}
	return z
}

// osRead is a ReadFunc on the file system that applies CheckPrivateMode to
// the descriptor read, as the daemon's reader does.
func osRead(path string, private bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if private {
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if err := CheckPrivateMode(path, fi); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}
