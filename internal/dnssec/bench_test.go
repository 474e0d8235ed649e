package dnssec

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkSignPoolZone measures a full re-sign at a state switch (issue
// 13's target: under 10 ms): a pool zone of 10 names, each with an A and an
// AAAA RRset holding the addresses of 4 sites (this one and 3 peers), the
// apex SOA, NS and DNSKEY (own key and 3 peer keys), glue, and the NSEC
// chain built anew, every RRset signed with one own key. "+verify" also
// checks every signature with KeySet.Verify, as a fail-safe signer would.
func BenchmarkSignPoolZone(b *testing.B) {
	for _, alg := range []uint8{ECDSAP256SHA256, ED25519} {
		own := newKey(b, alg)
		var peers []*Key
		for range 3 {
			peers = append(peers, peerOf(newKey(b, alg)))
		}
		ks := newKeySet(b, []*Key{own}, peers)
		z := poolZone(b, ks, 10, 4)
		for _, verify := range []bool{false, true} {
			name := algorithmName(alg)
			if verify {
				name += "+verify"
			}
			b.Run(name, func(b *testing.B) {
				now := testNow
				sigs := 0
				for b.Loop() {
					c, err := NewChain(z.soa, z.names())
					if err != nil {
						b.Fatal(err)
					}
					sets := z.rrsets
					for _, n := range c.Records() {
						sets = append(sets[:len(sets):len(sets)], []dns.RR{n})
					}
					sigs = 0
					for _, set := range sets {
						s, err := ks.Sign(set, now, DefaultValidity)
						if err != nil {
							b.Fatal(err)
						}
						if verify {
							if err := ks.Verify(set, s, now); err != nil {
								b.Fatal(err)
							}
						}
						sigs += len(s)
					}
					now = now.Add(time.Second)
				}
				b.ReportMetric(float64(sigs), "sigs/op")
			})
		}
	}
}

// BenchmarkDenyWire measures the per-query choice of NSEC records for an
// NXDOMAIN answer in the 10-name pool zone.
func BenchmarkDenyWire(b *testing.B) {
	c := poolZone(b, nil, 10, 4).chain(b)
	q, _ := wireName("no-such-name.sub.name5." + zone)
	b.ReportAllocs()
	for b.Loop() {
		if d := c.DenyWire(q, dns.TypeA); d.Result != NXDomain {
			b.Fatal(d)
		}
	}
}
