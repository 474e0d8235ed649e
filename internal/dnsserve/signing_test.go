package dnsserve

import (
	"crypto"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/dnssec"
)

// signNow is the fake clock of the signing tests.
var signNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// testKeys returns a key set of testZone with one own key of alg and the
// public keys of peers other sites.
func testKeys(t testing.TB, alg uint8, peers int) *dnssec.KeySet {
	t.Helper()
	own, err := dnssec.Generate(testZone, alg)
	if err != nil {
		t.Fatal(err)
	}
	var pub []*dnssec.Key
	for range peers {
		p, err := dnssec.Generate(testZone, alg)
		if err != nil {
			t.Fatal(err)
		}
		p.Signer = nil
		pub = append(pub, p)
	}
	ks, err := dnssec.NewKeySet(testZone, []*dnssec.Key{own}, pub)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// newSignedServer returns a serving, signed Server without sockets, on a
// fake clock set to signNow.
func newSignedServer(t testing.TB, ks *dnssec.KeySet) (*Server, *fakeClock) {
	t.Helper()
	cfg := testConfig()
	cfg.RRL.Rate = -1
	cfg.DNSSEC = &Signing{Keys: ks}
	s, err := New(zerolog.Nop(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(signNow)
	s.clock = clock.now
	if err := s.SetAnswers(Answers{}); err != nil {
		t.Fatal(err)
	}
	return s, clock
}

// doQuery packs a query with the DO bit.
func doQuery(t testing.TB, name string, qtype uint16) []byte {
	t.Helper()
	m := query(name, qtype)
	m.SetEdns0(1232, true)
	return mustPack(t, m)
}

// rrsets groups a section's records by owner and type, RRSIGs by the
// type they cover.
func rrsets(rrs []dns.RR) (sets map[rrKey][]dns.RR, sigs map[rrKey][]*dns.RRSIG) {
	sets, sigs = map[rrKey][]dns.RR{}, map[rrKey][]*dns.RRSIG{}
	for _, rr := range rrs {
		h := rr.Header()
		if sig, ok := rr.(*dns.RRSIG); ok {
			k := rrKey{strings.ToLower(h.Name), sig.TypeCovered}
			sigs[k] = append(sigs[k], sig)
			continue
		}
		k := rrKey{strings.ToLower(h.Name), h.Rrtype}
		sets[k] = append(sets[k], rr)
	}
	return sets, sigs
}

// checkSigned verifies that every RRset of r's answer and authority
// sections carries a valid signature by every own key of ks at now, and
// that a negative answer holds the NSEC records that prove it.
func checkSigned(t *testing.T, ks *dnssec.KeySet, r *dns.Msg, now time.Time, what string) {
	t.Helper()
	for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		sets, sigs := rrsets(sec)
		for k, set := range sets {
			if k.rrtype == dns.TypeOPT {
				continue
			}
			if err := ks.Verify(set, sigs[k], now); err != nil {
				t.Errorf("%s: %s %s: %v", what, k.owner, dns.TypeToString[k.rrtype], err)
			}
			for _, sig := range sigs[k] {
				if sig.Hdr.Ttl != set[0].Header().Ttl || sig.OrigTtl < set[0].Header().Ttl {
					t.Errorf("%s: RRSIG of %s %s: TTL %d, original %d; RRset TTL %d", what, k.owner, dns.TypeToString[k.rrtype], sig.Hdr.Ttl, sig.OrigTtl, set[0].Header().Ttl)
				}
			}
		}
	}
	if len(r.Answer) == 0 && (r.Rcode == dns.RcodeNameError || r.Rcode == dns.RcodeSuccess) {
		nsecs := 0
		for _, rr := range r.Ns {
			if _, ok := rr.(*dns.NSEC); ok {
				nsecs++
			}
		}
		if nsecs == 0 {
			t.Errorf("%s: %s without an NSEC proof", what, dns.RcodeToString[r.Rcode])
		}
	}
}

// TestSignedAnswers checks the signed zone on both paths and both
// algorithms: with DO every RRset comes with a valid RRSIG by the own key
// and negative answers with their NSEC proof; without DO no DNSSEC record
// is sent except the DNSKEY and NSEC asked for; the fast path's bytes
// carry the same records as the slow path's; signed answers are allocation
// free; and the unstable TTL is served under the one signature.
func TestSignedAnswers(t *testing.T) {
	for _, alg := range []uint8{dnssec.ECDSAP256SHA256, dnssec.ED25519} {
		ks := testKeys(t, alg, 1)
		s, clock := newSignedServer(t, ks)
		names := []string{testZone, fqdn("api"), "ApI.pOOL.example.TEST.", fqdn("v6"), fqdn("x"), fqdn("a.x"), fqdn("ns2"),
			fqdn("nope"), "deep.nope.pool.example.test.", "b.a.x.pool.example.test.", "zzz.pool.example.test.", "0.pool.example.test."}
		types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeSOA, dns.TypeDNSKEY, dns.TypeNSEC, dns.TypeANY, dns.TypeTXT, dns.TypeDS, dns.TypeRRSIG}
		pool := poolAnswers()
		pool.TTL = time.Second
		for _, ans := range []Answers{{}, pool} {
			if err := s.SetAnswers(ans); err != nil {
				t.Fatal(err)
			}
			for _, name := range names {
				for _, qtype := range types {
					what := dns.AlgorithmToString[alg] + " " + name + " " + dns.TypeToString[qtype]
					msg := doQuery(t, name, qtype)
					r := new(dns.Msg)
					if err := r.Unpack(s.respond(nil, msg, benchClient, true)); err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					checkSigned(t, ks, r, clock.now(), what)
					var q fastQuery
					if parseFast(msg, &q) {
						slow := new(dns.Msg)
						if err := slow.Unpack(s.respondSlow(nil, msg, s.snap.Load(), 0, false, benchClient, true)); err != nil {
							t.Fatal(err)
						}
						fast := new(dns.Msg)
						if err := fast.Unpack(s.respondFast(nil, msg, &q, s.snap.Load(), 0, false, benchClient, true)); err != nil {
							t.Fatal(err)
						}
						if fast.String() != slow.String() {
							t.Errorf("%s: fast path differs from slow path:\nfast %s\nslow %s", what, fast, slow)
						}
					}
					plain := query(name, qtype)
					plain.SetEdns0(1232, false)
					pr := new(dns.Msg)
					if err := pr.Unpack(s.respond(nil, mustPack(t, plain), benchClient, true)); err != nil {
						t.Fatal(err)
					}
					for _, rr := range append(append(pr.Answer, pr.Ns...), pr.Extra...) {
						switch rr.Header().Rrtype {
						case dns.TypeRRSIG:
							if qtype != dns.TypeRRSIG {
								t.Errorf("%s without DO: %s", what, rr)
							}
						case dns.TypeNSEC:
							if qtype != dns.TypeNSEC && qtype != dns.TypeANY {
								t.Errorf("%s without DO: %s", what, rr)
							}
						}
					}
				}
			}
		}
		// The unstable TTL: served at 1 s under signatures made at the
		// zone's TTL.
		r := new(dns.Msg)
		if err := r.Unpack(s.respond(nil, doQuery(t, fqdn("api"), dns.TypeA), benchClient, true)); err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) < 2 || r.Answer[0].Header().Ttl != 1 {
			t.Fatalf("pool answer %v; want the A records at TTL 1", r.Answer)
		}
		for _, rr := range r.Answer {
			if sig, ok := rr.(*dns.RRSIG); ok && (sig.OrigTtl != testTTL || sig.Hdr.Ttl != 1) {
				t.Errorf("RRSIG TTL %d original %d; want 1 and the zone's %d", sig.Hdr.Ttl, sig.OrigTtl, testTTL)
			}
		}
	}
}

// TestSignedAllocs: the DO answers of a signed zone, NXDOMAIN proofs
// included, are served without allocating.
func TestSignedAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters allocate")
	}
	s, _ := newSignedServer(t, testKeys(t, dnssec.ECDSAP256SHA256, 0))
	out := make([]byte, 0, maxTCPReply)
	for _, c := range []struct {
		name  string
		qtype uint16
	}{{fqdn("api"), dns.TypeA}, {fqdn("api"), dns.TypeAAAA}, {testZone, dns.TypeDNSKEY}, {fqdn("nope"), dns.TypeA},
		{"deep.a.x.pool.example.test.", dns.TypeA}, {fqdn("x"), dns.TypeA}} {
		msg := doQuery(t, c.name, c.qtype)
		var q fastQuery
		if !parseFast(msg, &q) {
			t.Fatalf("%s: not on the fast path", c.name)
		}
		if allocs := testing.AllocsPerRun(100, func() { s.respond(out, msg, benchClient, true) }); allocs != 0 {
			t.Errorf("%s %s with DO: %v allocations per query; want 0", c.name, dns.TypeToString[c.qtype], allocs)
		}
	}
}

// TestSignedNeverExpired: past the signatures' expiration a query with DO
// gets the withdraw rcode on both paths, never an expired RRSIG; a query
// without DO is still answered.
func TestSignedNeverExpired(t *testing.T) {
	s, clock := newSignedServer(t, testKeys(t, dnssec.ED25519, 0))
	exp := time.Unix(s.snap.Load().signed.expires, 0)
	if want := signNow.Add(dnssec.DefaultValidity); !exp.Equal(want) {
		t.Fatalf("signatures expire %s; want %s", exp, want)
	}
	clock.set(exp.Add(-time.Second))
	withOpt := func(name string, qtype uint16, local bool) []byte {
		m := query(name, qtype)
		m.SetEdns0(1232, true)
		if local {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1}}) // slow path
		}
		return mustPack(t, m)
	}
	for _, local := range []bool{false, true} {
		r := new(dns.Msg)
		if err := r.Unpack(s.respond(nil, withOpt(fqdn("api"), dns.TypeA, local), benchClient, true)); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("a second before expiry: %v %v", r, err)
		}
	}
	clock.set(exp)
	for _, local := range []bool{false, true} {
		for _, name := range []string{fqdn("api"), fqdn("nope"), testZone} {
			r := new(dns.Msg)
			if err := r.Unpack(s.respond(nil, withOpt(name, dns.TypeA, local), benchClient, true)); err != nil {
				t.Fatal(err)
			}
			if r.Rcode != dns.RcodeRefused || len(r.Answer)+len(r.Ns) != 0 {
				t.Errorf("at expiry, slow path %t, %s with DO: %s with %d records; want REFUSED, nothing signed", local, name, dns.RcodeToString[r.Rcode], len(r.Answer)+len(r.Ns))
			}
		}
	}
	r := new(dns.Msg)
	if err := r.Unpack(s.respond(nil, mustPack(t, query(fqdn("api"), dns.TypeA)), benchClient, true)); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Errorf("at expiry without DO: %v %v; want the answer", r, err)
	}
}

// TestResign: past the refresh point re-signing makes new signatures with
// a later expiration, and only for the RRsets that need it; a change of
// answers re-signs only what changed (the SOA and the new address sets).
func TestResign(t *testing.T) {
	ks := testKeys(t, dnssec.ECDSAP256SHA256, 0)
	s, clock := newSignedServer(t, ks)
	first := s.snap.Load().signed
	made := s.DNSSECState().Signed
	if due := s.resignDue(); !due.Equal(signNow.Add(dnssec.DefaultValidity - dnssec.DefaultRefresh)) {
		t.Errorf("re-sign due %s; want validity - refresh after signing", due)
	}
	// An answer change: the SOA serial moves, the addresses change.
	clock.set(signNow.Add(time.Hour))
	if err := s.SetAnswers(poolAnswers()); err != nil {
		t.Fatal(err)
	}
	// The SOA, the A RRsets of the six names, and the NSEC records of
	// v6 and both, which lost their AAAA: nine; the 64 orderings of one
	// address set share their signatures.
	if n := s.DNSSECState().Signed - made; n != 9 {
		t.Errorf("an answer change made %d signatures; want 9: the SOA, the new address RRsets and the NSEC records whose types changed", n)
	}
	clock.set(signNow.Add(dnssec.DefaultValidity - dnssec.DefaultRefresh + time.Minute))
	s.resign()
	next := s.snap.Load().signed
	if next.expires <= first.expires || time.Unix(next.expires, 0).Before(clock.now().Add(dnssec.DefaultRefresh)) {
		t.Errorf("after re-signing: expires %s (was %s)", time.Unix(next.expires, 0), time.Unix(first.expires, 0))
	}
	r := new(dns.Msg)
	if err := r.Unpack(s.respond(nil, doQuery(t, testZone, dns.TypeSOA), benchClient, true)); err != nil {
		t.Fatal(err)
	}
	checkSigned(t, ks, r, clock.now(), "SOA after re-signing")
	if st := s.DNSSECState(); !st.Enabled || st.Failing || st.LastError != "" || !st.Expires.Equal(time.Unix(next.expires, 0)) {
		t.Errorf("DNSSECState %+v", st)
	}
}

// failingSigner is a crypto.Signer that fails once broken.
type failingSigner struct {
	crypto.Signer
	broken *bool
}

func (f failingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if *f.broken {
		return nil, errors.New("hardware security module unplugged")
	}
	return f.Signer.Sign(r, digest, opts)
}

// newBreakableServer is newSignedServer with one own key whose signing
// fails while *broken is true (false at first).
func newBreakableServer(t *testing.T) (s *Server, clock *fakeClock, broken *bool) {
	t.Helper()
	own, err := dnssec.Generate(testZone, dnssec.ECDSAP256SHA256)
	if err != nil {
		t.Fatal(err)
	}
	broken = new(bool)
	own.Signer = failingSigner{own.Signer, broken}
	ks, err := dnssec.NewKeySet(testZone, []*dnssec.Key{own}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, clock = newSignedServer(t, ks)
	return s, clock, broken
}

// TestSigningFails: a zone that cannot be signed answers the withdraw rcode
// with the error in DNSSECState; a failed re-signing keeps signatures that
// are still good, and withdraws once they are within an hour of expiring;
// signing again serves again.
func TestSigningFails(t *testing.T) {
	s, clock, broken := newBreakableServer(t)
	rcode := func() int {
		r := new(dns.Msg)
		if err := r.Unpack(s.respond(nil, doQuery(t, fqdn("api"), dns.TypeA), benchClient, true)); err != nil {
			t.Fatal(err)
		}
		return r.Rcode
	}
	*broken = true
	// Re-signing at the refresh point fails: the signatures served stay.
	clock.set(signNow.Add(dnssec.DefaultValidity - dnssec.DefaultRefresh + time.Minute))
	s.resign()
	if st := s.DNSSECState(); st.Failing || !strings.Contains(st.LastError, "unplugged") || st.Errors != 1 || rcode() != dns.RcodeSuccess {
		t.Errorf("failed refresh with a week left: %+v, rcode %d; want the old signatures served, the error kept", st, rcode())
	}
	if due := s.resignDue(); !due.Equal(clock.now().Add(resignRetry)) {
		t.Errorf("retry due %s; want in %s", due, resignRetry)
	}
	// Still failing an hour before expiry: withdrawn.
	clock.set(signNow.Add(dnssec.DefaultValidity - expiryMargin))
	s.resign()
	if st := s.DNSSECState(); !st.Failing || rcode() != dns.RcodeRefused || s.Serving() {
		t.Errorf("failed re-signing an hour before expiry: %+v, rcode %d; want withdrawn", st, rcode())
	}
	// A new answer while broken: still withdrawn, error returned.
	if err := s.SetAnswers(poolAnswers()); err == nil || rcode() != dns.RcodeRefused {
		t.Errorf("SetAnswers while signing fails: %v, rcode %d; want an error and REFUSED", err, rcode())
	}
	*broken = false
	s.resign()
	if st := s.DNSSECState(); st.Failing || st.LastError != "" || rcode() != dns.RcodeSuccess {
		t.Errorf("after signing works again: %+v, rcode %d", st, rcode())
	}
}

// TestWithdrawClearsSigningError: a re-signing that failed while the
// signatures served were still good leaves an error but serves on; a
// withdrawal published after it succeeds (nothing to sign), so the error
// goes and no retry stays scheduled, instead of rebuilding the withdrawn
// snapshot every resignRetry with the old error in DNSSECState.
func TestWithdrawClearsSigningError(t *testing.T) {
	s, clock, broken := newBreakableServer(t)
	*broken = true
	clock.set(signNow.Add(dnssec.DefaultValidity - dnssec.DefaultRefresh + time.Minute))
	s.resign()
	if st := s.DNSSECState(); st.Failing || st.LastError == "" || st.Errors != 1 {
		t.Fatalf("failed refresh with a week left: %+v; want the error kept, not failing", st)
	}
	if err := s.SetAnswers(Answers{Refuse: true}); err != nil {
		t.Fatalf("SetAnswers(Refuse) while the keys cannot sign: %v; want nil, nothing is signed", err)
	}
	if st := s.DNSSECState(); st.Failing || st.LastError != "" || st.Errors != 1 || !st.Expires.IsZero() {
		t.Errorf("withdrawn after a failed refresh: %+v; want no error, not failing, nothing signed", st)
	}
	if due := s.resignDue(); !due.IsZero() {
		t.Errorf("withdrawn after a failed refresh: re-sign due %s; want none", due)
	}
}

// TestSigningChecks: keys of another zone, bad timing and address sets of
// different types are refused with the field named.
func TestSigningChecks(t *testing.T) {
	other, err := dnssec.Generate("other.test.", dnssec.ECDSAP256SHA256)
	if err != nil {
		t.Fatal(err)
	}
	oks, err := dnssec.NewKeySet("other.test.", []*dnssec.Key{other}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ks := testKeys(t, dnssec.ECDSAP256SHA256, 0)
	for _, c := range []struct {
		sign Signing
		want string
	}{
		{Signing{Keys: oks}, "config DNSSEC.Keys: keys of zone other.test."},
		{Signing{}, "config DNSSEC.Keys: no key set"},
		{Signing{Keys: ks, Validity: time.Hour, Refresh: 2 * time.Hour}, "config DNSSEC"},
		{Signing{Keys: ks, DNSKEYTTL: 1500 * time.Millisecond}, "config DNSSEC.DNSKEYTTL"},
	} {
		cfg := testConfig()
		cfg.DNSSEC = &c.sign
		if _, err := New(zerolog.Nop(), cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New with %+v: %v; want %q", c.sign, err, c.want)
		}
	}
	s, _ := newSignedServer(t, ks)
	mixed := Answers{Sets: []AddressSet{{A: addrs("198.51.100.1")}, {A: addrs("198.51.100.1"), AAAA: addrs("2001:db8::9")}}}
	if err := s.SetAnswers(mixed); err == nil || !strings.Contains(err.Error(), "different address types") {
		t.Errorf("SetAnswers with sets of different types: %v", err)
	}

	// An unsigned zone takes them; a reload that signs it then fails.
	cfg := testConfig()
	cfg.RRL.Rate = -1
	u, err := New(zerolog.Nop(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.SetAnswers(mixed); err != nil {
		t.Fatalf("unsigned SetAnswers with sets of different types: %v", err)
	}
	cfg.DNSSEC = &Signing{Keys: ks}
	if p, err := u.Prepare(cfg); err == nil || !strings.Contains(err.Error(), "config DNSSEC: answers Sets[1]: different address types") {
		p.Discard()
		t.Errorf("reload signing sets of different types: %v", err)
	}
	// They arrive between Prepare and Apply: Apply withdraws, as for any
	// signing failure, rather than sign one NSEC chain for both.
	if err := u.SetAnswers(Answers{}); err != nil {
		t.Fatal(err)
	}
	p, err := u.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.SetAnswers(mixed); err != nil {
		t.Fatal(err)
	}
	u.Apply(p)
	if st := u.DNSSECState(); !st.Failing || !strings.Contains(st.LastError, "different address types") || u.Serving() {
		t.Errorf("Apply signing sets of different types: %+v, serving %t; want withdrawn with the error", st, u.Serving())
	}
}

// TestSignedTruncation: a DNSKEY RRset too large for 1232 bytes with its
// RRSIG gets TC over UDP, and the whole signed RRset over TCP.
func TestSignedTruncation(t *testing.T) {
	ks := testKeys(t, dnssec.ECDSAP256SHA256, 16)
	cfg := testConfig()
	cfg.DNSSEC = &Signing{Keys: ks}
	_, udp, tcp := startServer(t, cfg, true)
	m := query(testZone, dns.TypeDNSKEY)
	m.SetEdns0(1232, true)
	r := exchange(t, "udp", udp, m)
	if !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("UDP: TC %t with %d answers; want TC and nothing", r.Truncated, len(r.Answer))
	}
	r = exchange(t, "tcp", tcp, m)
	if r.Truncated || len(r.Answer) != 18 {
		t.Fatalf("TCP: TC %t with %d answers; want the 17 keys and the RRSIG", r.Truncated, len(r.Answer))
	}
	checkSigned(t, ks, r, time.Now(), "DNSKEY over TCP")
}

// TestReloadNewKeysSignsOnce: a reload to new keys signs the answers in
// force once, in Prepare (so keys that cannot sign fail the reload), and
// Apply serves those signatures, making only the SOA's anew (its serial
// moves); a reload with the same keys signs nothing in Prepare.
func TestReloadNewKeysSignsOnce(t *testing.T) {
	s, _ := newSignedServer(t, testKeys(t, dnssec.ECDSAP256SHA256, 0))
	all := s.DNSSECState().Signed // every RRset, signed cold
	cfg := testConfig()
	cfg.RRL.Rate = -1
	next := testKeys(t, dnssec.ED25519, 0)
	cfg.DNSSEC = &Signing{Keys: next}
	p, err := s.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prepared := s.DNSSECState().Signed
	s.Apply(p)
	applied := s.DNSSECState().Signed
	if prepared-all != all || applied-prepared != 1 {
		t.Errorf("new keys: Prepare signed %d, Apply %d; want %d (every RRset) and 1 (the SOA)", prepared-all, applied-prepared, all)
	}
	r := new(dns.Msg)
	if err := r.Unpack(s.respond(nil, doQuery(t, fqdn("api"), dns.TypeA), benchClient, true)); err != nil {
		t.Fatal(err)
	}
	checkSigned(t, next, r, signNow, "api A after the key change")
	p, err = s.Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.DNSSECState().Signed - applied; n != 0 {
		t.Errorf("same keys: Prepare signed %d; want 0", n)
	}
	p.Discard()
}
