package dnssec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Chain is the NSEC chain of a small zone whose names are all known
// (RFC 4034 section 4, RFC 4035 section 2.3): one NSEC per owner name that
// has RRsets, in canonical order (RFC 4034 section 6.1) starting at the
// apex, each pointing at the next and the last at the apex. Empty
// non-terminals have no NSEC. A Chain is immutable and safe for concurrent
// use.
type Chain struct {
	nsec   []*dns.NSEC // canonical order; nsec[0] is the apex's
	owners []labels    // lower-case wire-format owner of nsec[i]
	apexW  []byte      // owners[0].name
}

// NSECTTL returns the TTL of the zone's NSEC records in seconds: the lower
// of the SOA's MINIMUM field and the SOA's own TTL (RFC 9077 section 3,
// which updates RFC 4034 section 4), as for negative caching (RFC 2308
// section 5).
func NSECTTL(soa *dns.SOA) uint32 {
	return min(soa.Minttl, soa.Hdr.Ttl)
}

// NewChain builds the NSEC chain of the zone whose apex SOA is soa (the
// owner of soa is the apex; its TTL and MINIMUM give the NSEC TTL, see
// NSECTTL). names maps each owner name of the zone to the types of the
// RRsets it holds (RRSIG and NSEC are added; DNSKEY must be listed at the
// apex when the zone is signed). Names compare case-insensitively and are
// stored lower-case.
//
// A name listed with no types is skipped when it is an empty non-terminal
// (some listed name with types is below it) and is an error otherwise.
// Errors also: a name outside the zone, the same name twice (in any case),
// the apex missing or without SOA, a SOA elsewhere, an NS or DS RRset below
// the apex (delegations are not supported), and a wildcard owner ("*" as
// first label: Deny assumes no wildcard can match).
func NewChain(soa *dns.SOA, names map[string][]uint16) (*Chain, error) {
	apex, err := canonicalZone(soa.Hdr.Name)
	if err != nil {
		return nil, fmt.Errorf("nsec chain: %w", err)
	}
	types := map[string][]uint16{}
	for name, ts := range names {
		n := dns.CanonicalName(name)
		if _, ok := dns.IsDomainName(n); !ok || !dns.IsSubDomain(apex, n) {
			return nil, fmt.Errorf("nsec chain: %s is not in zone %s", name, apex)
		}
		if _, dup := types[n]; dup {
			return nil, fmt.Errorf("nsec chain: %s listed twice", n)
		}
		if strings.HasPrefix(n, "*.") {
			return nil, fmt.Errorf("nsec chain: wildcard owner %s not supported", n)
		}
		for _, t := range ts {
			switch {
			case t == dns.TypeSOA && n != apex:
				return nil, fmt.Errorf("nsec chain: SOA at %s, not at the apex %s", n, apex)
			case (t == dns.TypeNS || t == dns.TypeDS) && n != apex:
				return nil, fmt.Errorf("nsec chain: %s at %s: delegations not supported", dns.TypeToString[t], n)
			}
		}
		types[n] = ts
	}
	if !slices.Contains(types[apex], dns.TypeSOA) {
		return nil, fmt.Errorf("nsec chain: apex %s missing or without SOA", apex)
	}
	var owners []string
	for n, ts := range types {
		if len(ts) > 0 {
			owners = append(owners, n)
		}
	}
	for n, ts := range types {
		if len(ts) == 0 && !slices.ContainsFunc(owners, func(o string) bool { return o != n && dns.IsSubDomain(n, o) }) {
			return nil, fmt.Errorf("nsec chain: %s has no RRsets and no name below it", n)
		}
	}
	slices.SortFunc(owners, Compare)
	c := &Chain{nsec: make([]*dns.NSEC, len(owners)), owners: make([]labels, len(owners))}
	ttl := NSECTTL(soa)
	for i, n := range owners {
		bitmap := append(slices.Clone(types[n]), dns.TypeNSEC, dns.TypeRRSIG)
		slices.Sort(bitmap)
		c.nsec[i] = &dns.NSEC{
			Hdr:        dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl},
			NextDomain: owners[(i+1)%len(owners)],
			TypeBitMap: slices.Compact(bitmap),
		}
		w, ok := wireName(n)
		if !ok {
			return nil, fmt.Errorf("nsec chain: %s does not pack", n)
		}
		c.owners[i] = parseLabels(w)
	}
	c.apexW = c.owners[0].name
	return c, nil
}

// Len returns the number of NSEC records: one per owner name with RRsets.
func (c *Chain) Len() int { return len(c.nsec) }

// NSEC returns the i-th NSEC record in canonical order (0 is the apex's).
// It is shared: sign it, serve it, never modify it. It panics when i is out
// of range, as indexing does.
func (c *Chain) NSEC(i int) *dns.NSEC { return c.nsec[i] }

// Records returns the chain's NSEC records in canonical order, each a
// one-record RRset to sign. The slice is a copy; the records are shared
// and must not be modified.
func (c *Chain) Records() []*dns.NSEC { return slices.Clone(c.nsec) }

// Cover returns the index of the NSEC record that matches or covers the
// uncompressed wire-format name qname (any case): the last owner that is
// not after qname in canonical order (RFC 4034 section 6.1), so that
// owner <= qname < next. A name before the apex (outside the zone) gets
// the last record, whose next name is the apex. It does not allocate.
func (c *Chain) Cover(qname []byte) int {
	q := parseLabels(qname)
	return c.cover(&q)
}

// cover is Cover on a parsed name.
func (c *Chain) cover(q *labels) int {
	lo, hi := 0, len(c.owners) // invariant: owners[lo-1] <= q < owners[hi]
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if compareLabels(&c.owners[mid], q) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return len(c.owners) - 1
	}
	return lo - 1
}
