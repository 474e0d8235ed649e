package dnssec

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestNewChain(t *testing.T) {
	c := smallZone(t, newKeySet(t, []*Key{newKey(t, ED25519)}, nil)).chain(t)
	var got []string
	for _, n := range c.Records() {
		got = append(got, n.String())
	}
	want := []string{
		"pool.domain.tld.\t60\tIN\tNSEC\tapi.pool.domain.tld. A NS SOA AAAA RRSIG NSEC DNSKEY",
		"api.pool.domain.tld.\t60\tIN\tNSEC\tns1.pool.domain.tld. A AAAA RRSIG NSEC",
		"ns1.pool.domain.tld.\t60\tIN\tNSEC\tns2.pool.domain.tld. A RRSIG NSEC",
		"ns2.pool.domain.tld.\t60\tIN\tNSEC\twww.pool.domain.tld. A RRSIG NSEC",
		"www.pool.domain.tld.\t60\tIN\tNSEC\ta.x.pool.domain.tld. A RRSIG NSEC",
		"a.x.pool.domain.tld.\t60\tIN\tNSEC\tpool.domain.tld. AAAA RRSIG NSEC",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NSEC chain (-want +got):\n%s", diff)
	}
	if c.Len() != len(want) || c.NSEC(0).Hdr.Name != zone || chainApex(t, c) != zone {
		t.Errorf("Len %d, NSEC(0) %s, apex %s", c.Len(), c.NSEC(0), chainApex(t, c))
	}
}

func TestNSECTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl, minimum, want uint32
	}{
		{300, 60, 60}, {30, 60, 30}, {3600, 3600, 3600},
	} {
		soa := testSOA(t)
		soa.Hdr.Ttl, soa.Minttl = tc.ttl, tc.minimum
		if got := NSECTTL(soa); got != tc.want {
			t.Errorf("NSECTTL(TTL %d, MINIMUM %d) = %d, want %d", tc.ttl, tc.minimum, got, tc.want)
		}
		c, err := NewChain(soa, map[string][]uint16{zone: {dns.TypeSOA}})
		if err != nil || c.NSEC(0).Hdr.Ttl != tc.want {
			t.Errorf("NewChain: %v, NSEC TTL %d, want %d", err, c.NSEC(0).Hdr.Ttl, tc.want)
		}
	}
}

func TestNewChainNames(t *testing.T) {
	soa := testSOA(t)
	apex := []uint16{dns.TypeSOA, dns.TypeNS}
	for _, tc := range []struct {
		name   string
		names  map[string][]uint16
		owners string // on success, the owners in order
		err    string
	}{
		{"apex only", map[string][]uint16{"POOL.domain.tld.": apex}, "pool.domain.tld.", ""},
		{"ENT listed without types", map[string][]uint16{zone: apex, "x." + zone: nil, "a.x." + zone: {dns.TypeA}}, "pool.domain.tld. a.x.pool.domain.tld.", ""},
		{"types deduplicated", map[string][]uint16{zone: {dns.TypeSOA, dns.TypeNSEC, dns.TypeSOA}}, "pool.domain.tld.", ""},
		{"no apex", map[string][]uint16{"a." + zone: {dns.TypeA}}, "", "apex pool.domain.tld. missing or without SOA"},
		{"apex without SOA", map[string][]uint16{zone: {dns.TypeNS}}, "", "without SOA"},
		{"outside", map[string][]uint16{zone: apex, "domain.tld.": {dns.TypeA}}, "", "domain.tld. is not in zone"},
		{"twice", map[string][]uint16{zone: apex, "a." + zone: {dns.TypeA}, "A." + zone: {dns.TypeAAAA}}, "", "listed twice"},
		{"SOA below apex", map[string][]uint16{zone: apex, "a." + zone: {dns.TypeSOA}}, "", "SOA at a.pool.domain.tld."},
		{"delegation", map[string][]uint16{zone: apex, "sub." + zone: {dns.TypeNS}}, "", "delegations not supported"},
		{"wildcard", map[string][]uint16{zone: apex, "*." + zone: {dns.TypeA}}, "", "wildcard owner"},
		{"empty leaf", map[string][]uint16{zone: apex, "a." + zone: nil}, "", "no RRsets and no name below it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewChain(soa, tc.names)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("NewChain = %v, want error %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var owners []string
			for _, n := range c.Records() {
				owners = append(owners, n.Hdr.Name)
			}
			if got := strings.Join(owners, " "); got != tc.owners {
				t.Errorf("owners %q, want %q", got, tc.owners)
			}
			if last := c.NSEC(c.Len() - 1); last.NextDomain != zone {
				t.Errorf("last NSEC %s does not point at the apex", last)
			}
		})
	}
}
