package dnssec

import (
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// Result is what a Chain says about a query name and type.
type Result uint8

const (
	// Exists: the name holds an RRset of the type (or the type is ANY at
	// a name with RRsets); there is nothing to deny.
	Exists Result = iota
	// NoData: the name exists (with RRsets, or as an empty non-terminal)
	// without that type (RFC 4035 section 3.1.3.1).
	NoData
	// NXDomain: the name does not exist (RFC 4035 section 3.1.3.2).
	NXDomain
	// OutOfZone: the name is not the apex or below it; the server refuses
	// it and there is no proof to give.
	OutOfZone
)

// String returns the result's name ("NODATA", "NXDOMAIN", ...).
func (r Result) String() string {
	switch r {
	case Exists:
		return "EXISTS"
	case NoData:
		return "NODATA"
	case NXDomain:
		return "NXDOMAIN"
	case OutOfZone:
		return "OUTOFZONE"
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// Denial tells which NSEC records of a Chain prove a negative answer. The
// indexes are into the chain (Chain.NSEC); -1 means none.
type Denial struct {
	Result Result
	// Match is the NSEC whose owner is the query name (Exists, and NoData
	// at a name with RRsets, RFC 4035 section 3.1.3.1), or the NSEC that
	// covers the query name: for NoData at an empty non-terminal, whose
	// NSEC's next name lies below the query name, and for NXDomain, where
	// it proves the name absent (RFC 4035 section 3.1.3.2). -1 for
	// OutOfZone.
	Match int
	// Wildcard is, for NXDomain only, the NSEC that covers the wildcard
	// name "*.<closest encloser>", proving no wildcard could have
	// answered (RFC 4035 section 3.1.3.2); -1 when Match already covers
	// it (the two are deduplicated) and for the other results.
	Wildcard int
}

// Proof returns the NSEC records that d names, Match first, as an
// authority section would carry them without their RRSIGs (nil for Exists
// and OutOfZone). The records are shared and must not be modified.
func (c *Chain) Proof(d Denial) []dns.RR {
	if d.Result != NoData && d.Result != NXDomain {
		return nil
	}
	rrs := []dns.RR{c.nsec[d.Match]}
	if d.Wildcard >= 0 {
		rrs = append(rrs, c.nsec[d.Wildcard])
	}
	return rrs
}

// Deny is DenyWire for a presentation-format query name (any case). It
// allocates; an invalid name is an error.
func (c *Chain) Deny(qname string, qtype uint16) (Denial, error) {
	w, ok := wireName(qname)
	if !ok {
		return Denial{}, fmt.Errorf("deny: %q is not a domain name", qname)
	}
	return c.DenyWire(w, qtype), nil
}

// DenyWire says whether the uncompressed wire-format name qname (any case)
// has an RRset of type qtype in the zone and, when not, which NSEC records
// prove it:
//
//   - qname outside the zone: OutOfZone;
//   - qname has RRsets: Exists when qtype is among its NSEC's types or is
//     ANY; otherwise NoData with Match its own NSEC (RFC 4035 section
//     3.1.3.1);
//   - qname is an empty non-terminal: NoData with Match the NSEC that
//     covers it, whose next name lies below qname, which proves qname
//     exists and holds no RRset (such a name has no NSEC to match, as
//     RFC 4035 section 3.1.3.1 would want; the covering NSEC is the only
//     proof NSEC offers, as the informational RFC 7129 explains);
//   - otherwise NXDomain with Match the NSEC that covers qname and
//     Wildcard the NSEC that covers "*.<closest encloser>", the closest
//     encloser being qname's longest existing ancestor (RFC 4035 section
//     3.1.3.2, RFC 4592 section 3.3.1), or -1 when it is Match.
//
// DS at the apex is NoData from the apex's NSEC: the zone itself holds no
// DS (RFC 4035 section 3.1.4.1 sends such queries to the parent). It does
// not allocate.
func (c *Chain) DenyWire(qname []byte, qtype uint16) Denial {
	q := parseLabels(qname)
	if !equalFoldWire(qname, c.apexW) && !isBelow(&q, c.apexW) {
		return Denial{Result: OutOfZone, Match: -1, Wildcard: -1}
	}
	i := c.cover(&q)
	if equalFoldWire(c.owners[i].name, qname) {
		if qtype == dns.TypeANY || slices.Contains(c.nsec[i].TypeBitMap, qtype) {
			return Denial{Result: Exists, Match: i, Wildcard: -1}
		}
		return Denial{Result: NoData, Match: i, Wildcard: -1}
	}
	if c.hasBelow(i, qname) {
		return Denial{Result: NoData, Match: i, Wildcard: -1}
	}
	// The closest encloser: qname's longest ancestor that exists.
	ce := c.apexW
	for l := 1; l < q.n; l++ {
		a := q.parent(l)
		if equalFoldWire(a.name, c.apexW) {
			break
		}
		if j := c.cover(&a); equalFoldWire(c.owners[j].name, a.name) || c.hasBelow(j, a.name) {
			ce = a.name
			break
		}
	}
	var buf [256]byte
	buf[0], buf[1] = 1, '*'
	w := parseLabels(buf[:2+copy(buf[2:], ce)])
	d := Denial{Result: NXDomain, Match: i, Wildcard: c.cover(&w)}
	if d.Wildcard == d.Match {
		d.Wildcard = -1
	}
	return d
}

// hasBelow reports whether name, which owns no NSEC and is covered by NSEC
// i, has a descendant with RRsets, which makes it an empty non-terminal:
// the next owner in canonical order, if any, lies below it (a name's
// descendants follow it directly in canonical order).
func (c *Chain) hasBelow(i int, name []byte) bool {
	return i+1 < len(c.owners) && isBelow(&c.owners[i+1], name)
}
