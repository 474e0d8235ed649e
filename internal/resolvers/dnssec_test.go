package resolvers

// Issue 13's proofs with validating resolvers: two self-mode sites, each
// signing the pool zone with its own key and publishing the other's public
// key (RFC 8901 section 2.1.2, model 2), behind unbound, BIND and Knot
// Resolver, each with a trust anchor for the pool zone. The local
// hierarchy is unsigned, so the anchors stand in for the DS records the
// parent would publish (`spdu-haproxy ds` makes them).
//
// PowerDNS Recursor 4.8 is left out. Its first resolution through the
// unsigned local parents comes back without AD: its trace shows the
// answer validated ("Secure!") and then "validation state was Insecure,
// state update is Secure, validation state is now Insecure", the state of
// the unsigned parents it walked in the same resolution; later ones carry
// AD. And the failover scenario below first lets beta refuse, which
// PowerDNS remembers per name for 60 s in self mode (TestSecondFailure,
// README "Resolvers"): a hazard that is not DNSSEC's.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// validators are the resolvers of the DNSSEC scenarios, on the package's
// resolver addresses.
var validators = []struct {
	kind Kind
	ip   string
}{{Unbound, resolverIPs[0]}, {BIND, resolverIPs[1]}, {Knot, resolverIPs[3]}}

// tally sums up samples.
type tally struct {
	samples, ad, servfail, failed int // failed: anything but NOERROR with addresses and AD
	byAddrs                       map[string]int
	byTags                        map[string]int
}

func count(ss []Result, names map[uint16]string) tally {
	t := tally{samples: len(ss), byAddrs: map[string]int{}, byTags: map[string]int{}}
	for _, s := range ss {
		if s.AD {
			t.ad++
		}
		if s.Rcode == dns.RcodeServerFailure {
			t.servfail++
		}
		if !validated(s) {
			t.failed++
			continue
		}
		t.byAddrs[strings.Join(slices.Sorted(slices.Values(s.Addrs)), ",")]++
		var keys []string
		for _, tag := range s.Sigs {
			keys = append(keys, names[tag])
		}
		t.byTags[strings.Join(keys, "+")]++
	}
	return t
}

// validated reports whether s is NOERROR with the AD bit and addresses.
func validated(s Result) bool { return s.Rcode == dns.RcodeSuccess && s.AD && len(s.Addrs) > 0 }

func (t tally) String() string {
	return fmt.Sprintf("%d samples, %d AD, %d SERVFAIL, %d failed; addresses %v; signed by %v", t.samples, t.ad, t.servfail, t.failed, t.byAddrs, t.byTags)
}

// phase is a stretch of a scenario, from its start to the next phase's.
type phase struct {
	name string
	from time.Time
}

// report logs, for every resolver, each phase's tally and the total
// ("failover: unbound 612 samples, 612 AD, 0 SERVFAIL"), and fails the
// test for any sample that is not NOERROR with the AD bit and addresses.
func report(t *testing.T, scenario string, s *Sampler, rs []*Resolver, phases []phase, end time.Time, names map[uint16]string) {
	t.Helper()
	for _, r := range rs {
		for i, p := range phases {
			to := end
			if i+1 < len(phases) {
				to = phases[i+1].from
			}
			t.Logf("%s, %s: %s %s", scenario, p.name, r.Kind, count(s.Between(r, p.from, to), names))
		}
		all := s.Between(r, phases[0].from, end)
		c := count(all, names)
		t.Logf("%s: %s %d samples, %d AD, %d SERVFAIL", scenario, r.Kind, c.samples, c.ad, c.servfail)
		if c.samples == 0 {
			t.Errorf("%s: %s: no sample", scenario, r.Kind)
		}
		for _, x := range all {
			if !validated(x) {
				t.Errorf("%s: %s at %s: rcode %s, AD %t, addresses %v; want NOERROR, AD and addresses", scenario, r.Kind,
					x.Sent.Sub(phases[0].from).Round(time.Millisecond), rcodeName(x.Rcode), x.AD, x.Addrs)
			}
		}
	}
}

// waitServes waits until site s hands out its own address.
func waitServes(t *testing.T, s *site) {
	t.Helper()
	waitAnswers(t, s.DNSAddr, s.name+" serves", 15*time.Second, s.ip)
}

// waitRefuses waits until site s answers REFUSED.
func waitRefuses(t *testing.T, s *site) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, s.name+" refuses", func() bool {
		rc, _ := siteAnswer(s.DNSAddr)
		return rc == dns.RcodeRefused
	})
}

// keygen makes a key of the pool zone with `spdu-haproxy keygen` in dir
// and returns its absolute base path and its key tag.
func keygen(t *testing.T, dir string) (string, uint16) {
	t.Helper()
	base := testenv.Keygen(t, dir, PoolZone, "ecdsap256sha256")
	return base, testenv.ReadDNSKEY(t, base).KeyTag()
}

// dnssecTable is testenv.DNSSECTable with dnskey_ttl a duration.
func dnssecTable(keys, peers []string, dnskeyTTL time.Duration) string {
	return testenv.DNSSECTable(keys, peers, dnskeyTTL.String())
}

// dsRecords returns what `spdu-haproxy ds` prints for the configuration of
// s with the [dnssec] table sec (written to a file of its own).
func dsRecords(t *testing.T, s *site, sec string) []*dns.DS {
	t.Helper()
	c := s.Config
	c.Extra = sec
	path := filepath.Join(testenv.TempDir(t), "ds.toml")
	if err := os.WriteFile(path, []byte(c.Text(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return testenv.DS(t, path)
}

// reload writes the [dnssec] table sec into s's configuration, sends
// SIGHUP and waits until the daemon logs that the reload is done.
func reload(t *testing.T, s *site, sec string) {
	t.Helper()
	s.Config.Extra = sec
	testenv.Reload(t, s.daemon, s.CfgPath, s.Config.Text(t), "configuration reloaded")
}

// dnskeyAt asks the server at addr (a site's nameserver, or a resolver:
// then from its cache) for the pool zone's DNSKEY RRset with the DO bit,
// and returns the key tags of the DNSKEYs and of the RRSIGs over them.
func dnskeyAt(t *testing.T, addr string) (keys, sigs []uint16) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(PoolZone, dns.TypeDNSKEY)
	m.SetEdns0(1232, true)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("DNSKEY at %s: %v", addr, err)
	}
	for _, rr := range r.Answer {
		switch x := rr.(type) {
		case *dns.DNSKEY:
			keys = append(keys, x.KeyTag())
		case *dns.RRSIG:
			sigs = append(sigs, x.KeyTag)
		}
	}
	slices.Sort(keys)
	slices.Sort(sigs)
	return keys, sigs
}

// sorted returns tags sorted.
func sorted(tags ...uint16) []uint16 {
	out := slices.Clone(tags)
	slices.Sort(out)
	return out
}

// settle is how long after a site withdraws resolver k may still hand
// out the site's answer from its cache: the answer's TTL, or for Knot
// Resolver its cache.min_ttl (5 s by default) if longer, plus a second
// for the query that refreshes it.
func settle(k Kind, ttl time.Duration) time.Duration {
	if k == Knot {
		ttl = max(ttl, 5*time.Second)
	}
	return ttl + time.Second
}

// startValidators starts the validating resolvers with the trust anchors
// ds, iterating from h.
func startValidators(t *testing.T, h *Hierarchy, ds []*dns.DS) []*Resolver {
	t.Helper()
	var rs []*Resolver
	for _, v := range validators {
		rs = append(rs, Start(t, v.kind, h, Options{IP: v.ip, TrustAnchors: ds}))
	}
	return rs
}

// TestDNSSECFailover is issue 13's failover proof: with per-site keys,
// every answer through a validating resolver is NOERROR with the AD bit
// before, during and after a failover from alpha to beta and back, and no
// sample is a SERVFAIL.
//
// The case that model 2 is for is made certain: the resolvers learn the
// pool zone's DNSKEY RRset from alpha (beta refuses while they first
// ask), its TTL is an hour, so during the failover they validate beta's
// answers, signed by beta's key only, with alpha's DNSKEY RRset, which
// lists beta's key as a peer key. The test checks that the resolvers
// still hold alpha's DNSKEY RRset (signed by alpha's key) after the
// failover, and that the answers they validated then were beta's
// signatures.
//
// The control case, without peer_keys, shows the test can fail: the same
// failover then gives SERVFAIL (bogus) at every validator.
func TestDNSSECFailover(t *testing.T) {
	t.Run("per-site keys", func(t *testing.T) { dnssecFailover(t, true) })
	t.Run("control: no peer_keys", func(t *testing.T) { dnssecFailover(t, false) })
}

func dnssecFailover(t *testing.T, peerKeys bool) {
	const ttl = time.Second
	const dnskeyTTL = time.Hour
	dir := testenv.TempDir(t)
	ka, tagA := keygen(t, dir)
	kb, tagB := keygen(t, dir)
	names := map[uint16]string{tagA: "alpha's key", tagB: "beta's key"}
	peersOf := map[string][]string{"alpha": {kb}, "beta": {ka}}
	if !peerKeys {
		peersOf = map[string][]string{"alpha": nil, "beta": nil}
	}
	sec := map[string]string{
		"alpha": dnssecTable([]string{ka}, peersOf["alpha"], dnskeyTTL),
		"beta":  dnssecTable([]string{kb}, peersOf["beta"], dnskeyTTL),
	}
	alpha, beta := startSites(t, newSites(t, "self", ttl), sec)
	// The parent's DS records: every site's key (ds lists own and peer
	// keys; without peer keys, each site's own).
	ds := dsRecords(t, alpha, dnssecTable([]string{ka}, []string{kb}, dnskeyTTL))

	// The resolvers learn the zone from alpha alone.
	beta.withdraw()
	waitRefuses(t, beta)
	h := StartHierarchy(t, HierarchyConfig{Pool: sitePool})
	rs := startValidators(t, h, ds)
	for _, r := range rs {
		if s := ResolveDNSSEC(r.Addr, PoolServiceName, dns.TypeA, 3*time.Second); s.Rcode != dns.RcodeSuccess || !s.AD || !slices.Equal(s.Addrs, []string{alpha.ip}) {
			t.Fatalf("%s before the scenario: rcode %s, AD %t, %v; want alpha's address, validated\n%s", r.Kind, rcodeName(s.Rcode), s.AD, s.Addrs, r.Output())
		}
		if _, sigs := dnskeyAt(t, r.Addr); !slices.Equal(sigs, []uint16{tagA}) {
			t.Fatalf("%s holds a DNSKEY RRset signed by %v, want alpha's key %d", r.Kind, sigs, tagA)
		}
	}
	beta.recover(t)
	waitServes(t, beta)

	// The control only needs the failover itself.
	before, during, after := 3*time.Second, 8*time.Second, 3*time.Second
	if !peerKeys {
		before, during, after = time.Second, 7*time.Second, 0
	}
	s := StartSampler(t, SamplerConfig{Name: PoolServiceName, Every: 100 * time.Millisecond, Timeout: 2 * time.Second, DNSSEC: true}, rs...)
	phases := []phase{{"both serving", time.Now()}}
	hold(before)
	alpha.withdraw()
	waitRefuses(t, alpha)
	withdrawn := time.Now()
	phases = append(phases, phase{"alpha withdrawn", withdrawn})
	// Longer than every resolver's settle: each then hands out beta alone
	// for a while.
	hold(during)
	for _, r := range rs {
		if _, sigs := dnskeyAt(t, r.Addr); !slices.Equal(sigs, []uint16{tagA}) {
			t.Errorf("%s: after the failover it holds a DNSKEY RRset signed by %v, want still alpha's (%d): the case is not the one meant", r.Kind, sigs, tagA)
		}
	}
	back := time.Now()
	if after > 0 {
		alpha.recover(t)
		waitServes(t, alpha)
		phases = append(phases, phase{"alpha back", time.Now()})
		hold(after)
	}
	end := time.Now()
	s.Stop()

	scenario := "failover"
	if !peerKeys {
		scenario = "failover without peer_keys (control)"
	}
	if !peerKeys {
		// Every validator must call beta's answers bogus: its key is not in
		// the DNSKEY RRset they hold.
		for _, r := range rs {
			from := settle(r.Kind, ttl)
			c := count(s.Between(r, withdrawn.Add(from), back), names)
			t.Logf("%s, alpha withdrawn (from %s on): %s %s", scenario, from, r.Kind, c)
			if c.servfail == 0 {
				t.Errorf("%s: %s gave no SERVFAIL while beta answered alone with a key alpha's DNSKEY RRset lacks: %s", scenario, r.Kind, c)
			}
		}
		return
	}
	report(t, scenario, s, rs, phases, end, names)
	// Once alpha's answers have expired, the resolvers hand out beta
	// alone, validated with beta's signatures.
	for _, r := range rs {
		for _, x := range s.Between(r, withdrawn.Add(settle(r.Kind, ttl)), back) {
			if !slices.Equal(x.Addrs, []string{beta.ip}) || !slices.Equal(x.Sigs, []uint16{tagB}) {
				t.Errorf("%s %s after alpha withdrew: addresses %v signed by %v; want beta's alone, signed by beta's key %d", r.Kind,
					x.Sent.Sub(withdrawn).Round(time.Millisecond), x.Addrs, x.Sigs, tagB)
			}
		}
	}
}

// TestDNSSECRollover is issue 13's rollover proof: alpha replaces its key
// while the validating resolvers keep asking, with no SERVFAIL and the AD
// bit on every sample. The procedure is the README's, in the multi-signer
// model: the new key's DS is published first (here: the resolvers' trust
// anchors hold the DS of alpha's old and new key from the start, a double
// DS, as the parent would during the rollover); the new key goes into
// alpha's keys and its public key into beta's peer_keys (both reloaded:
// beta first, so that no site signs with a key another site does not
// publish); after the DNSKEY TTL (2 s) the old key leaves alpha's keys and
// beta's peer_keys (alpha first: it stops signing with it before it is
// unpublished). Then beta withdraws, so that every answer is alpha's,
// signed by the new key alone.
//
// DNSKEY TTL 2 s keeps the wait short; Knot Resolver keeps every record at
// least its cache.min_ttl (5 s), so the wait is that long.
func TestDNSSECRollover(t *testing.T) {
	const ttl = time.Second
	const dnskeyTTL = 2 * time.Second
	dir := testenv.TempDir(t)
	ka, tagA := keygen(t, dir)
	kb, tagB := keygen(t, dir)
	ka2, tagA2 := keygen(t, dir)
	names := map[uint16]string{tagA: "alpha's old key", tagB: "beta's key", tagA2: "alpha's new key"}
	alpha, beta := startSites(t, newSites(t, "self", ttl), map[string]string{
		"alpha": dnssecTable([]string{ka}, []string{kb}, dnskeyTTL),
		"beta":  dnssecTable([]string{kb}, []string{ka}, dnskeyTTL),
	})
	// Double DS: the DS records of every key alpha and beta will publish.
	ds := dsRecords(t, alpha, dnssecTable([]string{ka, ka2}, []string{kb}, dnskeyTTL))
	if len(ds) != 3 {
		t.Fatalf("ds printed %d DS records, want 3 (alpha's old and new key, beta's)", len(ds))
	}
	h := StartHierarchy(t, HierarchyConfig{Pool: sitePool})
	rs := startValidators(t, h, ds)

	checkKeys := func(step string, s *site, keys, sigs []uint16) {
		t.Helper()
		gotKeys, gotSigs := dnskeyAt(t, s.DNSAddr)
		if !slices.Equal(gotKeys, sorted(keys...)) || !slices.Equal(gotSigs, sorted(sigs...)) {
			t.Errorf("%s: %s's DNSKEY RRset holds keys %v signed by %v; want %v signed by %v", step, s.name, gotKeys, gotSigs, sorted(keys...), sorted(sigs...))
		}
	}
	checkKeys("before", alpha, []uint16{tagA, tagB}, []uint16{tagA})
	checkKeys("before", beta, []uint16{tagA, tagB}, []uint16{tagB})

	s := StartSampler(t, SamplerConfig{Name: PoolServiceName, Every: 100 * time.Millisecond, Timeout: 2 * time.Second, DNSSEC: true}, rs...)
	phases := []phase{{"before", time.Now()}}
	hold(3 * time.Second)

	phases = append(phases, phase{"new key added", time.Now()})
	reload(t, beta, dnssecTable([]string{kb}, []string{ka, ka2}, dnskeyTTL))
	reload(t, alpha, dnssecTable([]string{ka, ka2}, []string{kb}, dnskeyTTL))
	checkKeys("new key added", alpha, []uint16{tagA, tagA2, tagB}, []uint16{tagA, tagA2})
	checkKeys("new key added", beta, []uint16{tagA, tagA2, tagB}, []uint16{tagB})
	// Every DNSKEY RRset cached before now has expired after this: the
	// DNSKEY TTL, as the resolver that keeps records longest here keeps it
	// (Knot Resolver: at least 5 s).
	hold(settle(Knot, dnskeyTTL))

	phases = append(phases, phase{"old key removed", time.Now()})
	reload(t, alpha, dnssecTable([]string{ka2}, []string{kb}, dnskeyTTL))
	reload(t, beta, dnssecTable([]string{kb}, []string{ka2}, dnskeyTTL))
	checkKeys("old key removed", alpha, []uint16{tagA2, tagB}, []uint16{tagA2})
	checkKeys("old key removed", beta, []uint16{tagA2, tagB}, []uint16{tagB})
	hold(3 * time.Second)

	beta.withdraw()
	waitRefuses(t, beta)
	alone := time.Now()
	phases = append(phases, phase{"beta withdrawn", alone})
	hold(settle(Knot, ttl) + 2*time.Second)
	end := time.Now()
	s.Stop()

	report(t, "rollover", s, rs, phases, end, names)
	for _, r := range rs {
		for _, x := range s.Between(r, alone.Add(settle(r.Kind, ttl)), end) {
			if !slices.Equal(x.Addrs, []string{alpha.ip}) || !slices.Equal(x.Sigs, []uint16{tagA2}) {
				t.Errorf("%s %s after beta withdrew: addresses %v signed by %v; want alpha's alone, signed by its new key %d only", r.Kind,
					x.Sent.Sub(alone).Round(time.Millisecond), x.Addrs, x.Sigs, tagA2)
			}
		}
	}
}
