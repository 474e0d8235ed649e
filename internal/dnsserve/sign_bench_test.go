package dnsserve

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/dnssec"
)

// The cost of DNSSEC (issue 13, Performance): re-signing at a state switch
// for a zone of 10 names in pool mode with 3 peers (target under 10 ms),
// the cold first signing, and the per-query cost of DO answers next to
// BenchmarkRespond. Figures in docs/benchmarks.md.

// switchNames is the number of service names of the switch benchmark's zone.
const switchNames = 10

// switchConfig is a zone of switchNames service names (svc0 to svc9, each
// with an A and an AAAA record of its own) and two out-of-zone
// nameservers.
func switchConfig() Config {
	cfg := Config{
		Zone:        testZone,
		TTL:         testTTL * time.Second,
		Nameservers: []string{"ns1.example.test.", "ns2.example.test."},
		Hostmaster:  "hostmaster.example.test.",
		Withdraw:    dns.RcodeRefused,
		Listen:      []string{"127.0.0.1:0"},
		Records:     map[string]Records{},
	}
	for i := range switchNames {
		cfg.Records[fmt.Sprintf("svc%d", i)] = Records{A: addrs(fmt.Sprintf("192.0.2.%d", 10+i)), AAAA: addrs(fmt.Sprintf("2001:db8::%d", 10+i))}
	}
	cfg.RRL.Rate = -1
	return cfg
}

// switchKeys is a key set of testZone with one own key of alg and the
// public keys of three peers: four keys in the DNSKEY RRset.
func switchKeys(tb testing.TB, alg uint8) *dnssec.KeySet {
	tb.Helper()
	return testKeys(tb, alg, 3)
}

// siteAnswers are 64 pool orderings of the first n of four sites (this
// one and three peers), each with one IPv4 and one IPv6 address: ordering
// i is the i-th permutation, cycling (24 distinct orderings of four sites,
// 6 of three), as the publisher hands over weighted random orderings.
func siteAnswers(n int) Answers {
	sites := make([]AddressSet, n)
	for i := range sites {
		sites[i] = AddressSet{A: addrs(fmt.Sprintf("198.51.100.%d", i+1)), AAAA: addrs(fmt.Sprintf("2001:db8:100::%d", i+1))}
	}
	var perms [][]int
	var permute func(prefix []int, rest []int)
	permute = func(prefix, rest []int) {
		if len(rest) == 0 {
			perms = append(perms, append([]int(nil), prefix...))
			return
		}
		for i := range rest {
			next := append(append([]int(nil), rest[:i]...), rest[i+1:]...)
			permute(append(prefix, rest[i]), next)
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	permute(nil, idx)
	var a Answers
	for i := range 64 {
		var set AddressSet
		for _, j := range perms[i%len(perms)] {
			set.A = append(set.A, sites[j].A...)
			set.AAAA = append(set.AAAA, sites[j].AAAA...)
		}
		a.Sets = append(a.Sets, set)
	}
	return a
}

// newSwitchServer returns the switch benchmark's Server, signed with ks
// (nil: unsigned), serving the pool answers of all four sites.
func newSwitchServer(tb testing.TB, ks *dnssec.KeySet) *Server {
	tb.Helper()
	cfg := switchConfig()
	if ks != nil {
		cfg.DNSSEC = &Signing{Keys: ks}
	}
	s, err := New(zerolog.Nop(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.SetAnswers(siteAnswers(4)); err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkSignSwitch measures SetAnswers at a state switch of the pool,
// whole: serial, variants, signatures, every answer precomputed in wire
// format. switch: one of four sites leaves the answer, then comes back,
// alternating (each op is one switch: the SOA and the 20 address RRsets
// signed anew, the NSEC chain and DNSKEY RRset taken from the cache).
// cold: the same with the signature cache emptied first, as at start-up
// (every RRset of the zone signed). unsigned: the switch of the same zone
// without DNSSEC, for comparison. sigs/op counts RRSIG sets made.
func BenchmarkSignSwitch(b *testing.B) {
	four, three := siteAnswers(4), siteAnswers(3)
	for _, c := range []struct {
		name string
		alg  uint8 // 0: unsigned
		cold bool
	}{
		{"unsigned/switch", 0, false},
		{"ECDSAP256SHA256/switch", dnssec.ECDSAP256SHA256, false},
		{"ECDSAP256SHA256/cold", dnssec.ECDSAP256SHA256, true},
		{"ED25519/switch", dnssec.ED25519, false},
		{"ED25519/cold", dnssec.ED25519, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			var ks *dnssec.KeySet
			if c.alg != 0 {
				ks = switchKeys(b, c.alg)
			}
			s := newSwitchServer(b, ks)
			if err := s.SetAnswers(three); err != nil { // both answers seen once
				b.Fatal(err)
			}
			made := s.DNSSECState().Signed
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				a := four
				if i%2 == 1 {
					a = three
				}
				i++
				if c.cold {
					s.signer.cache = nil
				}
				if err := s.SetAnswers(a); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.DNSSECState().Signed-made)/float64(i), "sigs/op")
		})
	}
}

// TestSignSwitch checks what BenchmarkSignSwitch measures: a switch makes
// exactly the SOA and address RRset signatures (1 + 2 per name) and every
// answer of both states validates. Its time is the benchmark's to report.
func TestSignSwitch(t *testing.T) {
	ks := switchKeys(t, dnssec.ECDSAP256SHA256)
	s := newSwitchServer(t, ks)
	if err := s.SetAnswers(siteAnswers(3)); err != nil {
		t.Fatal(err)
	}
	for i, a := range []Answers{siteAnswers(4), siteAnswers(3)} {
		made := s.DNSSECState().Signed
		if err := s.SetAnswers(a); err != nil {
			t.Fatal(err)
		}
		if n := s.DNSSECState().Signed - made; n != 1+2*switchNames {
			t.Errorf("switch %d made %d signatures; want %d (SOA and the address RRsets)", i, n, 1+2*switchNames)
		}
		if vs := len(s.snap.Load().variants); vs != 64 {
			t.Errorf("%d variants; want 64", vs)
		}
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{fqdn("svc0"), dns.TypeA}, {fqdn("svc9"), dns.TypeAAAA}, {fqdn("nope"), dns.TypeA}, {fqdn("svc3"), dns.TypeTXT}, {testZone, dns.TypeDNSKEY}} {
			r := new(dns.Msg)
			if err := r.Unpack(s.respond(nil, doQuery(t, q.name, q.qtype), benchClient, true)); err != nil {
				t.Fatal(err)
			}
			checkSigned(t, ks, r, time.Now(), fmt.Sprintf("switch %d %s %s", i, q.name, dns.TypeToString[q.qtype]))
		}
	}
}

// TestSignedAllocsPool: DO answers in pool mode (64 orderings, a random one
// per query) are allocation free too.
func TestSignedAllocsPool(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters allocate")
	}
	s := newSwitchServer(t, switchKeys(t, dnssec.ECDSAP256SHA256))
	out := make([]byte, 0, maxTCPReply)
	for _, c := range signedCases() {
		msg := mustPack(t, c.msg())
		if allocs := testing.AllocsPerRun(100, func() { s.respond(out, msg, benchClient, false) }); allocs != 0 {
			t.Errorf("pool %s: %v allocations per query; want 0", c.name, allocs)
		}
	}
}

// signedCase is one query of BenchmarkRespondSigned.
type signedCase struct {
	name  string
	qname string
	qtype uint16
	do    bool
}

func (c signedCase) msg() *dns.Msg {
	m := query(c.qname, c.qtype)
	m.SetEdns0(1232, c.do)
	return m
}

// signedCases are BenchmarkRespond's EDNS queries with the DO bit (NODATA
// asks TXT, which no name has), the same A query without it (a signed
// zone, an unsigned answer), and the DNSKEY RRset, for switchConfig's
// zone; BenchmarkRespondSigned asks api instead of svc0 in testConfig's.
func signedCases() []signedCase {
	return []signedCase{
		{"A+DO", fqdn("svc0"), dns.TypeA, true},
		{"A+edns", fqdn("svc0"), dns.TypeA, false},
		{"NODATA+DO", fqdn("svc0"), dns.TypeTXT, true},
		{"NXDOMAIN+DO", fqdn("nope"), dns.TypeA, true},
		{"DNSKEY+DO", testZone, dns.TypeDNSKEY, true},
	}
}

// BenchmarkRespondSigned is BenchmarkRespond for a signed zone: self mode
// on testConfig's zone (api A with two addresses, one own key), as
// BenchmarkRespond's "A+edns" and "NXDOMAIN+edns", and pool mode on the
// switch benchmark's zone (64 orderings of four sites, four keys in the
// DNSKEY RRset). bytes/reply is the reply's size.
func BenchmarkRespondSigned(b *testing.B) {
	for _, alg := range []uint8{dnssec.ECDSAP256SHA256, dnssec.ED25519} {
		cfg := testConfig()
		cfg.RRL.Rate = -1
		cfg.DNSSEC = &Signing{Keys: testKeys(b, alg, 0)}
		self, err := New(zerolog.Nop(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		self.setServing(true)
		pool := newSwitchServer(b, switchKeys(b, alg))
		for _, mode := range []struct {
			name string
			s    *Server
		}{{"self", self}, {"pool", pool}} {
			out := make([]byte, 0, maxTCPReply)
			for _, c := range signedCases() {
				if mode.name == "self" && c.qname == fqdn("svc0") {
					c.qname = fqdn("api")
				}
				msg := mustPack(b, c.msg())
				b.Run(dns.AlgorithmToString[alg]+"/"+mode.name+"/"+c.name, func(b *testing.B) {
					b.ReportAllocs()
					var n int
					for b.Loop() {
						n = len(mode.s.respond(out, msg, benchClient, false))
					}
					b.ReportMetric(float64(n), "bytes/reply")
				})
			}
		}
	}
}
