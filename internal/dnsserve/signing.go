package dnsserve

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/dnssec"
)

// Signing is the DNSSEC configuration of the zone (Config.DNSSEC, issue
// 13): the keys and the signatures' timing. With it every RRset served is
// signed when the answers change (RFC 4035 section 2.2), denial of
// existence is a precomputed NSEC chain (RFC 4034 section 4, RFC 4035
// section 3.1.3), and RRSIG and NSEC records go out only to queries with
// the DO bit (RFC 3225, RFC 4035 section 3.1.1).
type Signing struct {
	// Keys are this site's own keys, which all sign, and the other sites'
	// public keys, which the DNSKEY RRset lists too (RFC 8901 section
	// 2.1.2, model 2). Required; its zone must be Config.Zone.
	Keys *dnssec.KeySet
	// Validity is the time from signing to a signature's expiration;
	// default dnssec.DefaultValidity (14 days). Each inception is
	// back-dated dnssec.Backdate (an hour) for clocks that lag.
	Validity time.Duration
	// Refresh: signatures with less than this left are made anew; default
	// dnssec.DefaultRefresh (7 days). It must be below Validity.
	Refresh time.Duration
	// DNSKEYTTL is the TTL of the apex DNSKEY RRset, whole seconds;
	// default DefaultDNSKEYTTL. A key rollover waits for it.
	DNSKEYTTL time.Duration
}

// DefaultDNSKEYTTL is the DNSKEY RRset's TTL when Signing.DNSKEYTTL is 0.
const DefaultDNSKEYTTL = time.Hour

// resignRetry is how long the server waits to retry a failed re-signing,
// and expiryMargin (dnssec.ExpiryMargin) how long before its signatures
// expire a site that could not re-sign stops serving them and answers the
// withdraw rcode instead (a validator calls an expired signature bogus, a
// SERVFAIL for every one of its clients; a REFUSED sends them to another
// site).
const (
	resignRetry  = time.Minute
	expiryMargin = dnssec.ExpiryMargin
)

// zoneSigning is Signing resolved, in the zone.
type zoneSigning struct {
	keys              *dnssec.KeySet
	validity, refresh time.Duration
	dnskeyTTL         uint32
}

// resolveSigning checks s against the zone origin and fills the defaults.
// Errors name the Config field.
func resolveSigning(s *Signing, origin string) (*zoneSigning, error) {
	if s == nil {
		return nil, nil
	}
	if s.Keys == nil {
		return nil, errors.New("config DNSSEC.Keys: no key set")
	}
	if s.Keys.Zone() != origin {
		return nil, fmt.Errorf("config DNSSEC.Keys: keys of zone %s, not %s", s.Keys.Zone(), origin)
	}
	zs := &zoneSigning{keys: s.Keys, validity: s.Validity, refresh: s.Refresh}
	if zs.validity == 0 {
		zs.validity = dnssec.DefaultValidity
	}
	if zs.refresh == 0 {
		zs.refresh = dnssec.DefaultRefresh
	}
	if err := dnssec.CheckTiming(zs.validity, zs.refresh); err != nil {
		return nil, fmt.Errorf("config DNSSEC: %w", err)
	}
	ttl := s.DNSKEYTTL
	if ttl == 0 {
		ttl = DefaultDNSKEYTTL
	}
	sec, err := ttlSeconds(ttl)
	if err != nil {
		return nil, fmt.Errorf("config DNSSEC.DNSKEYTTL %w", err)
	}
	zs.dnskeyTTL = sec
	return zs, nil
}

// rrKey names one RRset of a snapshot.
type rrKey struct {
	owner  string // lower-case FQDN
	rrtype uint16
}

// signedSnap is the DNSSEC data of one serving snapshot of a signed zone.
// It is immutable once built.
type signedSnap struct {
	chain  *dnssec.Chain
	dnskey []dns.RR
	nsec   map[string][]dns.RR // owner -> its NSEC RRset; no entry for an empty non-terminal
	// sigs are the RRSIGs served with each RRset, ready to append: those
	// of SOA, NS, DNSKEY and NSEC in shared, those of the address RRsets
	// per variant (their TTL is the variant's).
	shared    map[rrKey][]dns.RR
	byVariant map[*variant]map[rrKey][]dns.RR
	// expires is the earliest expiration of the signatures served, in
	// seconds since the epoch; no signed answer is given from then on.
	expires int64
	// refreshAt is when the earliest signature needs making anew.
	refreshAt time.Time
}

// sigsOf returns the RRSIGs served with the RRset owner/rrtype in variant v.
func (ss *signedSnap) sigsOf(v *variant, owner string, rrtype uint16) []dns.RR {
	if m := ss.byVariant[v]; m != nil {
		if sigs, ok := m[rrKey{owner, rrtype}]; ok {
			return sigs
		}
	}
	return ss.shared[rrKey{owner, rrtype}]
}

// signer makes and keeps the signatures of a zone. Signatures are cached by
// the RRset they cover, so a new snapshot signs only what changed (a new
// SOA serial, a new address set) and what needs a refresh. It is used
// under Server.setMu only.
type signer struct {
	zs    *zoneSigning
	cache map[string][]*dns.RRSIG
	// made counts RRSIG sets made (not taken from the cache); it is the
	// server's counter, so it carries on across reloads.
	made *atomic.Uint64
}

// newSigner returns the signer of zs sharing the counter made, or nil for
// an unsigned zone.
func newSigner(zs *zoneSigning, made *atomic.Uint64) *signer {
	if zs == nil {
		return nil
	}
	return &signer{zs: zs, made: made}
}

// rrsetID identifies an RRset's content for the cache: owner, type, TTL
// and every record's data, sorted.
func rrsetID(rrs []dns.RR) string {
	lines := make([]string, len(rrs))
	for i, rr := range rrs {
		lines[i] = rr.String()
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// withTTL returns copies of rrs with TTL ttl.
func withTTL(rrs []dns.RR, ttl uint32) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl = ttl
		out[i] = c
	}
	return out
}

// sign returns the signatures of rrs (an RRset whose TTL is its Original
// TTL) from the cache or made now, and records them in used.
func (sg *signer) sign(rrs []dns.RR, now time.Time, used map[string][]*dns.RRSIG) ([]*dns.RRSIG, error) {
	id := rrsetID(rrs)
	if sigs, ok := used[id]; ok {
		return sigs, nil
	}
	sigs, ok := sg.cache[id]
	if !ok || dnssec.NeedsRefresh(sigs, now, sg.zs.refresh) {
		var err error
		if sigs, err = sg.zs.keys.Sign(rrs, now, sg.zs.validity); err != nil {
			return nil, err
		}
		sg.made.Add(1)
	}
	used[id] = sigs
	return sigs, nil
}

// served returns the signatures as RRs served with TTL ttl (at most their
// Original TTL, RFC 4034 section 3).
func served(sigs []*dns.RRSIG, ttl uint32) []dns.RR {
	out := make([]dns.RR, len(sigs))
	for i, s := range sigs {
		c := *s
		c.Hdr.Ttl = ttl
		out[i] = &c
	}
	return out
}

// signSnapshot signs every RRset of the serving snapshot snap at now: the
// apex SOA, NS and DNSKEY RRsets, the NSEC chain of the names that exist
// and the address RRsets of every distinct variant. The address RRsets of
// all variants must have the same types at each name (the NSEC chain is
// one, made from the first variant): buildSnapshot checks that with
// Answers.sameAddrTypes. The cache then holds only what this snapshot uses.
func (sg *signer) signSnapshot(snap *snapshot, now time.Time) (*signedSnap, error) {
	z := snap.zone
	ss := &signedSnap{
		dnskey:    sg.zs.keys.DNSKEYs(sg.zs.dnskeyTTL),
		nsec:      map[string][]dns.RR{},
		shared:    map[rrKey][]dns.RR{},
		byVariant: map[*variant]map[rrKey][]dns.RR{},
	}
	ss.dnskey = slices.Clip(ss.dnskey)
	// The types at each name, from the first variant; the others agree.
	types := map[string][]uint16{}
	for name, n := range z.nodes {
		var ts []uint16
		if name == z.origin {
			ts = append(ts, dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY)
		}
		if n.service {
			ts = append(ts, addrTypes(snap.variants[0].rrs[name])...)
		}
		types[name] = ts
	}
	chain, err := dnssec.NewChain(snap.soa[0].(*dns.SOA), types)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	ss.chain = chain

	used := map[string][]*dns.RRSIG{}
	var all [][]*dns.RRSIG
	// add signs rrs (served at their own TTL) with Original TTL signTTL
	// (at least theirs).
	add := func(m map[rrKey][]dns.RR, rrs []dns.RR, signTTL uint32) error {
		h := rrs[0].Header()
		servedTTL := h.Ttl
		signTTL = max(signTTL, servedTTL)
		signed := rrs
		if h.Ttl != signTTL {
			signed = withTTL(rrs, signTTL)
		}
		sigs, err := sg.sign(signed, now, used)
		if err != nil {
			return err
		}
		all = append(all, sigs)
		m[rrKey{h.Name, h.Rrtype}] = slices.Clip(served(sigs, servedTTL))
		return nil
	}
	for _, rrs := range [][]dns.RR{snap.soa, z.apexNS, ss.dnskey} {
		if err := add(ss.shared, rrs, rrs[0].Header().Ttl); err != nil {
			return nil, err
		}
	}
	for _, n := range chain.Records() {
		rrs := []dns.RR{n}
		ss.nsec[n.Hdr.Name] = rrs
		if err := add(ss.shared, rrs, n.Hdr.Ttl); err != nil {
			return nil, err
		}
	}
	for _, v := range snap.variants {
		if ss.byVariant[v] != nil {
			continue
		}
		m := map[rrKey][]dns.RR{}
		for _, name := range z.services {
			for _, rrs := range [][]dns.RR{v.rrs[name].a, v.rrs[name].aaaa} {
				if len(rrs) == 0 {
					continue
				}
				// Signed at the zone's TTL at least, so one signature serves
				// the unstable TTL too (RFC 4035 section 5.3.3 takes the
				// lower of the TTL and the Original TTL).
				if err := add(m, rrs, z.ttl); err != nil {
					return nil, err
				}
			}
		}
		ss.byVariant[v] = m
	}
	for i, sigs := range all {
		_, exp, _ := dnssec.Window(sigs, now)
		at, _ := dnssec.RefreshAt(sigs, now, sg.zs.refresh)
		if i == 0 || exp.Unix() < ss.expires {
			ss.expires = exp.Unix()
		}
		if i == 0 || at.Before(ss.refreshAt) {
			ss.refreshAt = at
		}
	}
	sg.cache = used
	return ss, nil
}

// addrTypes returns the address types an owner holds in a variant.
func addrTypes(r addrRRs) []uint16 {
	var ts []uint16
	if len(r.a) > 0 {
		ts = append(ts, dns.TypeA)
	}
	if len(r.aaaa) > 0 {
		ts = append(ts, dns.TypeAAAA)
	}
	return ts
}

// signDecision adds DNSSEC records to d, the zone's answer to qname/qtype
// in variant v, for a query with the DO bit (RFC 4035 section 3.1): each
// RRset of the answer, authority and additional sections is followed by
// its RRSIGs, and a negative answer (NXDOMAIN or NODATA) carries the NSEC
// records that prove it, each with its RRSIG (RFC 4035 sections 3.1.3.1
// and 3.1.3.2). Answers that are not the zone's (REFUSED, the withdraw
// rcode) are left alone.
func (ss *signedSnap) signDecision(v *variant, qname string, qtype uint16, d decision) decision {
	if !d.aa {
		return d
	}
	out := d
	out.answer = ss.withSigs(v, d.answer)
	out.additional = ss.withSigs(v, d.additional)
	out.authority = ss.withSigs(v, d.authority)
	if len(d.answer) == 0 && len(d.authority) > 0 {
		den, err := ss.chain.Deny(qname, qtype)
		if err == nil {
			for _, n := range ss.chain.Proof(den) {
				out.authority = append(out.authority, n)
				out.authority = append(out.authority, ss.shared[rrKey{n.Header().Name, dns.TypeNSEC}]...)
			}
		}
	}
	return out
}

// withSigs returns rrs with the RRSIGs of each RRset (a run of records of
// one owner and type) after it. RRSIG records themselves are not signed.
func (ss *signedSnap) withSigs(v *variant, rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return rrs
	}
	out := make([]dns.RR, 0, 2*len(rrs))
	for i := 0; i < len(rrs); {
		h := rrs[i].Header()
		j := i + 1
		for j < len(rrs) && rrs[j].Header().Rrtype == h.Rrtype && strings.EqualFold(rrs[j].Header().Name, h.Name) {
			j++
		}
		out = append(out, rrs[i:j]...)
		if h.Rrtype != dns.TypeRRSIG {
			out = append(out, ss.sigsOf(v, strings.ToLower(h.Name), h.Rrtype)...)
		}
		i = j
	}
	return out
}

// rrsigsAt returns every RRSIG at name in variant v, by type covered, for
// a query of type RRSIG.
func (ss *signedSnap) rrsigsAt(v *variant, name string, types []uint16) []dns.RR {
	var out []dns.RR
	for _, t := range types {
		out = append(out, ss.sigsOf(v, name, t)...)
	}
	return out
}

// DNSSECState is the signing state of a Server, for metrics and status.
type DNSSECState struct {
	// Enabled is true when the zone is signed (Config.DNSSEC).
	Enabled bool
	// Expires is the earliest expiration of the signatures served; zero
	// while none are (withdrawn, or unsigned).
	Expires time.Time
	// Signed counts RRset signings (one RRSIG per own key each) since New;
	// Errors the signing passes that failed.
	Signed, Errors uint64
	// LastError is the latest signing failure, "" once a snapshot is
	// published without one (signed, or withdrawn: nothing to sign).
	LastError string
	// Failing is true while the zone answers the withdraw rcode because it
	// cannot be signed (Config.Withdraw to every query, as withdrawn).
	Failing bool
}

// dnssecCounters are the signing counters read by DNSSECState.
type dnssecCounters struct {
	signed, errors atomic.Uint64
	lastError      atomic.Pointer[string]
	failing        atomic.Bool
}

// DNSSECState returns the signing state.
func (s *Server) DNSSECState() DNSSECState {
	st := DNSSECState{
		Signed:  s.dnssecStats.signed.Load(),
		Errors:  s.dnssecStats.errors.Load(),
		Failing: s.dnssecStats.failing.Load(),
	}
	if e := s.dnssecStats.lastError.Load(); e != nil {
		st.LastError = *e
	}
	snap := s.snap.Load()
	st.Enabled = snap.zone.sign != nil
	if snap.signed != nil {
		st.Expires = time.Unix(snap.signed.expires, 0)
	}
	return st
}

// fingerprint identifies what the signatures depend on besides the RRset:
// the own keys and the validity. Two zones with the same fingerprint may
// share a signature cache.
func (zs *zoneSigning) fingerprint() string {
	if zs == nil {
		return ""
	}
	var b strings.Builder
	for _, k := range zs.keys.Own() {
		b.WriteString(k.DNSKEY.String())
		b.WriteByte('\n')
	}
	b.WriteString(strconv.FormatInt(int64(zs.validity), 10))
	return b.String()
}

// wakeResign tells the re-signing loop to look at the snapshot again.
func (s *Server) wakeResign() {
	select {
	case s.resignWake <- struct{}{}:
	default:
	}
}

// resignDue returns when the zone must next be signed again: when the
// earliest signature served needs a refresh, or resignRetry from now while
// signing fails; zero when nothing is signed.
func (s *Server) resignDue() time.Time {
	snap := s.snap.Load()
	if snap.zone.sign == nil {
		return time.Time{}
	}
	if s.dnssecStats.lastError.Load() != nil {
		return s.clock().Add(resignRetry)
	}
	if snap.signed != nil {
		return snap.signed.refreshAt
	}
	return time.Time{}
}

// resign signs the answers in force again, replacing the signatures that
// need a refresh (publishLocked with resign: a failure keeps signatures
// that are still good for more than expiryMargin).
func (s *Server) resign() {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	if s.zone.sign == nil {
		return
	}
	s.publishLocked(s.answers, false, true) //nolint:errcheck // logged, counted and retried
}

// resignLoop re-signs the zone when resignDue says, until stop closes.
// Times come from s.clock, the wait from the real clock.
func (s *Server) resignLoop(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if due := s.resignDue(); !due.IsZero() {
			timer.Reset(max(due.Sub(s.clock()), 0))
		} else {
			timer.Stop()
		}
		select {
		case <-stop:
			timer.Stop()
			return
		case <-s.resignWake:
		case <-timer.C:
			s.resign()
		}
	}
}

// ZoneText returns the zone as it is served now, in master-file format
// (RFC 1035 section 5) in canonical order: every RRset of the first
// answer set (pool mode hands out several orderings of the same data),
// and in a signed zone the DNSKEY RRset, the NSEC chain and every RRSIG,
// as dnssec-verify and kzonecheck read them. An RRset served below its
// RRSIGs' Original TTL (pool mode's unstable TTL) is printed at the
// Original TTL, after a comment giving the served one, as a master file
// must hold it. A withdrawn zone has only its SOA and NS RRsets. Each
// record is one line.
func (s *Server) ZoneText() string {
	snap := s.snap.Load()
	z := snap.zone
	var v *variant
	if snap.serving {
		v = snap.variants[0]
	}
	names := make([]string, 0, len(z.nodes))
	for name := range z.nodes {
		names = append(names, name)
	}
	slices.SortFunc(names, dnssec.Compare)
	var b strings.Builder
	fmt.Fprintf(&b, "; zone %s, serial %d, %s\n", z.origin, snap.serial, map[bool]string{true: "serving", false: "withdrawn"}[snap.serving])
	for _, name := range names {
		types := []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY, dns.TypeA, dns.TypeAAAA, dns.TypeNSEC}
		for _, t := range types {
			var rrs []dns.RR
			switch {
			case v != nil:
				rrs, _ = snap.rrset(v, name, t)
			case name == z.origin && t == dns.TypeSOA:
				rrs = snap.soa
			case name == z.origin && t == dns.TypeNS:
				rrs = z.apexNS
			}
			var sigs []dns.RR
			if snap.signed != nil && len(rrs) > 0 {
				sigs = snap.signed.sigsOf(v, name, t)
			}
			// A master file holds an RRset at the Original TTL of its
			// RRSIGs (RFC 4034 section 3.1.4); the served TTL may be lower.
			if len(sigs) > 0 && rrs[0].Header().Ttl != sigs[0].(*dns.RRSIG).OrigTtl {
				fmt.Fprintf(&b, "; served at TTL %d\n", rrs[0].Header().Ttl)
				rrs, sigs = withTTL(rrs, sigs[0].(*dns.RRSIG).OrigTtl), withTTL(sigs, sigs[0].(*dns.RRSIG).OrigTtl)
			}
			for _, rr := range append(slices.Clip(rrs), sigs...) {
				b.WriteString(rr.String())
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}
