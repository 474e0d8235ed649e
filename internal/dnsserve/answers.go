package dnsserve

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// Answers is the DNS server's one input of serving state: what the zone
// hands out for its service names now. The daemon's publisher builds it
// from the pool policy's decision (internal/pool) and hands it over with
// SetAnswers; the server keeps no other notion of serving or withdrawn.
type Answers struct {
	// Refuse answers every in-zone query with Config.Withdraw, without
	// records: the site is withdrawn.
	Refuse bool
	// Sets, when not empty, are the address sets every service name hands
	// out (pool mode), one per precomputed ordering; each query picks one
	// uniformly at random, so the share of first addresses follows the
	// share of sets that start with them. An empty Sets serves every
	// service name's own Config.Records (self mode). A service name without
	// addresses of a type in a set answers NODATA for that type.
	Sets []AddressSet
	// TTL is the TTL of the service names' A and AAAA RRsets, whole seconds
	// (RFC 2181 section 8); 0 means Config.TTL. SOA and NS keep
	// Config.TTL.
	TTL time.Duration
	// Shed is the fraction of queries, from 0 to 1, for the A, AAAA and
	// ANY RRsets of the service names that are answered with
	// Config.Withdraw instead, decided per query at random: a loaded site
	// sends that share of resolvers to another site's nameserver (load
	// shedding, internal/shed). The apex's SOA, NS and DNSKEY and the
	// in-zone nameservers' addresses are never shed, so resolvers can
	// still reach the zone. It does not move the SOA serial.
	Shed float64
}

// AddressSet is one ordering of the addresses an answer hands out.
type AddressSet struct {
	// A and AAAA are the addresses in answer order: IPv4 for A (RFC 1035
	// section 3.4.1), IPv6 for AAAA (RFC 3596 section 2), no repeats.
	A, AAAA []netip.Addr
}

// key identifies the answer for SOA serial changes (RFC 1982 serial
// arithmetic, RFC 1996 section 2): the serial moves when the site turns
// withdrawn or serving, or when the set of addresses or their TTL changes,
// not when only their order does.
func (a Answers) key() string {
	switch {
	case a.Refuse:
		return "refuse"
	case len(a.Sets) == 0:
		return "own|" + strconv.FormatInt(int64(a.TTL), 10)
	}
	var all []netip.Addr
	for _, s := range a.Sets {
		all = append(all, s.A...)
		all = append(all, s.AAAA...)
	}
	slices.SortFunc(all, netip.Addr.Compare)
	all = slices.Compact(all)
	return string(addrKey([]byte("sets|"+strconv.FormatInt(int64(a.TTL), 10)+"|"), all))
}

// check validates a against z; errors name the field.
func (a Answers) check() error {
	if _, err := ttlSeconds(a.TTL); err != nil {
		return fmt.Errorf("answers TTL %w", err)
	}
	if !(a.Shed >= 0 && a.Shed <= 1) { // NaN fails too
		return fmt.Errorf("answers Shed %v: must be from 0 to 1", a.Shed)
	}
	for i, s := range a.Sets {
		if err := (Records{A: s.A, AAAA: s.AAAA}).check(); err != nil {
			return fmt.Errorf("answers Sets[%d].%w", i, err)
		}
	}
	return nil
}

// sameAddrTypes returns an error naming the first of a.Sets that holds
// other address types (A, AAAA or both) than Sets[0], as a signed zone
// cannot serve: its one NSEC chain lists the same types at each name
// whichever set a query gets (RFC 4034 section 4.1.2). Self mode (no
// Sets) always passes.
func (a Answers) sameAddrTypes() error {
	for i, set := range a.Sets {
		if (len(set.A) > 0) != (len(a.Sets[0].A) > 0) || (len(set.AAAA) > 0) != (len(a.Sets[0].AAAA) > 0) {
			return fmt.Errorf("answers Sets[%d]: different address types than Sets[0]; a signed zone has one NSEC chain, so every set must hold the same types", i)
		}
	}
	return nil
}

// variant is one ordering of a snapshot's service RRsets: the A and AAAA
// RRsets of every service name, and the glue that goes with the apex NS
// RRset. It is immutable; its slices have capacity equal to length, so an
// append by a caller can never write into them.
type variant struct {
	rrs  map[string]addrRRs // by service name
	glue []dns.RR           // A and AAAA of the in-zone nameservers, in NS order
}

// addrRRs are one service name's address RRsets in a variant.
type addrRRs struct {
	a, aaaa []dns.RR
}

// newVariant builds the variant in which each service name has the
// addresses addrs returns for it, with TTL ttl (seconds).
func newVariant(z *zone, ttl uint32, addrs func(owner string) Records) *variant {
	v := &variant{rrs: make(map[string]addrRRs, len(z.services))}
	for _, owner := range z.services {
		r := addrs(owner)
		var rr addrRRs
		for _, ip := range r.A {
			rr.a = append(rr.a, &dns.A{Hdr: z.header(owner, dns.TypeA, ttl), A: ip.AsSlice()})
		}
		for _, ip := range r.AAAA {
			rr.aaaa = append(rr.aaaa, &dns.AAAA{Hdr: z.header(owner, dns.TypeAAAA, ttl), AAAA: ip.AsSlice()})
		}
		rr.a, rr.aaaa = slices.Clip(rr.a), slices.Clip(rr.aaaa)
		v.rrs[owner] = rr
	}
	for _, h := range z.nsHosts {
		v.glue = append(v.glue, v.rrs[h].a...)
		v.glue = append(v.glue, v.rrs[h].aaaa...)
	}
	v.glue = slices.Clip(v.glue)
	return v
}

// snapshot is one immutable view of the zone and its answers, published
// through Server.snap; queries only load it.
type snapshot struct {
	zone    *zone
	serving bool
	serial  uint32   // SOA SERIAL, RFC 1982 serial number arithmetic
	soa     []dns.RR // the apex SOA RRset carrying serial, len 1
	// variants are the orderings of the service RRsets, one per
	// Answers.Sets entry (or one: the own records); nil while withdrawn.
	// Equal orderings share one variant.
	variants []*variant
	wire     *wireZone // every answer precomputed for the fast path
	// signed is the DNSSEC data of a signed zone while serving; nil
	// otherwise.
	signed *signedSnap
	// shedBelow is Answers.Shed scaled to 2^64: a query is shed when a
	// uniform random uint64 falls below it; 0 sheds nothing.
	shedBelow uint64
}

// shedThreshold scales the fraction p (0 to 1) to 2^64 for a comparison
// with a uniform random uint64.
func shedThreshold(p float64) uint64 {
	if p <= 0 {
		return 0
	}
	if f := math.Ldexp(p, 64); f < math.Ldexp(1, 64) {
		return uint64(f)
	}
	return math.MaxUint64
}

// shedType reports whether queries of qtype for a sheddable name may be
// shed: the address RRsets and ANY, which answers with one of them.
func shedType(qtype uint16) bool {
	return qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeANY
}

// newSnapshot returns the snapshot of z answering a with serial, unsigned
// (a withdrawn snapshot, or a zone without DNSSEC). a must have passed
// check.
func newSnapshot(z *zone, a Answers, serial uint32) *snapshot {
	snap, err := buildSnapshot(z, a, serial, nil, time.Time{})
	if err != nil {
		// Only signing fails, and nothing is signed here.
		panic(fmt.Sprintf("dnsserve: %v", err))
	}
	return snap
}

// buildSnapshot returns the snapshot of z answering a with serial, every
// answer precomputed in wire format. When z is signed and a serves, sg
// signs it at now; a then needs the same address types in every set
// (sameAddrTypes). Either failing is an error: no snapshot. a must have
// passed check.
func buildSnapshot(z *zone, a Answers, serial uint32, sg *signer, now time.Time) (*snapshot, error) {
	snap, err := buildRecords(z, a, serial, sg, now)
	if err != nil {
		return nil, err
	}
	w, err := buildWire(snap)
	if err != nil {
		// buildZone and Answers.check only accept names and records that
		// pack.
		panic(fmt.Sprintf("dnsserve: precompute answers: %v", err))
	}
	snap.wire = w
	return snap, nil
}

// buildRecords is buildSnapshot short of the wire answers: the records
// and, in a signed zone, the signatures, with the same errors. Its
// snapshot has no wire (nil), so it cannot be served; Prepare uses it to
// try new keys.
func buildRecords(z *zone, a Answers, serial uint32, sg *signer, now time.Time) (*snapshot, error) {
	soa := &dns.SOA{
		Hdr:     z.header(z.origin, dns.TypeSOA, z.ttl),
		Ns:      z.mname,
		Mbox:    z.rname,
		Serial:  serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  z.ttl,
	}
	snap := &snapshot{zone: z, serving: !a.Refuse, serial: serial, soa: []dns.RR{soa}}
	if snap.serving {
		snap.shedBelow = shedThreshold(a.Shed)
		ttl := z.ttl
		if a.TTL > 0 {
			ttl = uint32(a.TTL.Seconds())
		}
		if len(a.Sets) == 0 {
			snap.variants = []*variant{newVariant(z, ttl, func(owner string) Records { return z.own[owner] })}
		} else {
			seen := map[string]*variant{}
			for _, set := range a.Sets {
				k := string(addrKey(addrKey(nil, set.A), set.AAAA))
				v := seen[k]
				if v == nil {
					r := Records(set)
					v = newVariant(z, ttl, func(string) Records { return r })
					seen[k] = v
				}
				snap.variants = append(snap.variants, v)
			}
		}
		if z.sign != nil && sg != nil {
			// Checked here too, not only in SetAnswers: Prepare tries new
			// keys on the answers in force, and Apply may sign answers an
			// unsigned zone took without the check.
			if err := a.sameAddrTypes(); err != nil {
				return nil, err
			}
			var err error
			if snap.signed, err = sg.signSnapshot(snap, now); err != nil {
				return nil, err
			}
		}
	}
	return snap, nil
}

// rrset returns the RRset of type qtype at the existing name in variant v
// (nil while withdrawn), or nil, and whether it is the apex NS RRset (which
// takes glue). For ANY it returns a single RRset, as RFC 8482 section 4.1
// allows: the one of lowest type, as Knot does.
func (s *snapshot) rrset(v *variant, name string, qtype uint16) (rrs []dns.RR, isNS bool) {
	apex := name == s.zone.origin
	switch qtype {
	case dns.TypeA:
		return v.rrs[name].a, false
	case dns.TypeAAAA:
		return v.rrs[name].aaaa, false
	case dns.TypeNS:
		if apex {
			return s.zone.apexNS, true
		}
	case dns.TypeSOA:
		if apex {
			return s.soa, false
		}
	case dns.TypeDNSKEY:
		if apex && s.signed != nil {
			return s.signed.dnskey, false
		}
	case dns.TypeNSEC:
		if s.signed != nil {
			return s.signed.nsec[name], false
		}
	case dns.TypeRRSIG:
		if s.signed != nil {
			if n := s.signed.nsec[name]; n != nil {
				return s.signed.rrsigsAt(v, name, n[0].(*dns.NSEC).TypeBitMap), false
			}
		}
	case dns.TypeANY:
		for _, t := range [...]uint16{dns.TypeA, dns.TypeNS, dns.TypeSOA, dns.TypeAAAA, dns.TypeNSEC, dns.TypeDNSKEY} {
			if rrs, isNS := s.rrset(v, name, t); len(rrs) > 0 {
				return rrs, isNS
			}
		}
	}
	return nil, false
}

// SetAnswers publishes a as what the zone hands out. Every answer is
// precomputed in wire format before it is published, so queries stay
// allocation-free, and queries in flight finish on the snapshot they
// loaded. The SOA serial moves on (the larger of the previous serial plus
// one and the current Unix time in seconds, RFC 1982) when the site turns
// withdrawn or serving, or the set of addresses or their TTL changes; not
// when only their order does. Invalid addresses or TTL are an error and
// keep the answers in force. In a signed zone the answers are signed
// before they are published; if signing fails the zone answers the
// withdraw rcode and the error is returned (DNSSECState has it too); the
// answers are kept, so the next SetAnswers or re-signing tries again.
// Safe from any goroutine; logging changes is the caller's job.
func (s *Server) SetAnswers(a Answers) error {
	if err := a.check(); err != nil {
		return err
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	if s.zone.sign != nil {
		// Refused here, before buildSnapshot would fail on it and
		// withdraw the zone.
		if err := a.sameAddrTypes(); err != nil {
			return err
		}
	}
	return s.publishLocked(a, false, false)
}

// publishLocked stores the snapshot of s.zone answering a; s.setMu is held.
// force moves the serial on even if the answer is the same (the zone
// itself changed). In a signed zone a signing failure publishes the
// withdraw rcode instead (a validator would call unsigned or badly signed
// answers bogus) and returns the error; so does resign, except that while
// the signatures served have more than expiryMargin left they stay.
func (s *Server) publishLocked(a Answers, force, resign bool) error {
	old := s.snap.Load()
	serial := old.serial
	if k := a.key(); force || k != s.answersKey {
		serial = nextSerial(old.serial, s.clock().Unix())
		s.answersKey = k
	}
	s.answers = a
	now := s.clock()
	snap, err := buildSnapshot(s.zone, a, serial, s.signer, now)
	if err == nil {
		// Whatever failed before no longer stands: a stale error would
		// keep resignDue retrying the snapshot every resignRetry (a
		// withdrawn one too, which has nothing to sign).
		s.dnssecStats.failing.Store(false)
		s.dnssecStats.lastError.Store(nil)
		s.snap.Store(snap)
		s.wakeResign()
		return nil
	}
	s.dnssecStats.errors.Add(1)
	msg := err.Error()
	s.dnssecStats.lastError.Store(&msg)
	if resign && old.signed != nil && old.serving && time.Unix(old.signed.expires, 0).Sub(now) > expiryMargin {
		s.log.Warn().Err(err).Time("expires", time.Unix(old.signed.expires, 0)).Msg("re-signing failed; the signatures served are still valid, retrying")
		return err
	}
	s.log.Error().Err(err).Msg("signing failed: answering the withdraw rcode until the zone can be signed")
	s.dnssecStats.failing.Store(true)
	s.snap.Store(newSnapshot(s.zone, Answers{Refuse: true}, serial))
	s.wakeResign()
	return err
}

// Serving reports whether the zone hands out addresses (the current
// answers do not refuse).
func (s *Server) Serving() bool { return s.snap.Load().serving }

// Serial returns the SOA serial (RFC 1035 section 3.3.13) of the current
// snapshot.
func (s *Server) Serial() uint32 { return s.snap.Load().serial }

// nextSerial returns the serial that follows prev when the state changes at
// unix time now (seconds): the larger of prev+1 and now, compared with serial
// number arithmetic (RFC 1982 section 3.2) so that a wrap still increases.
func nextSerial(prev uint32, now int64) uint32 {
	next := prev + 1
	if t := uint32(now); int32(t-next) > 0 {
		return t
	}
	return next
}
