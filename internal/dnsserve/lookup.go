package dnsserve

import (
	"strings"

	"github.com/miekg/dns"
)

// lookup chooses the reply to q from snap in variant v, shedding it if
// shed (the query drew the snapshot's shed fraction) (RFC 1034 section
// 4.3.2, RFC 2308 sections 2.1 and 2.2). It is pure and never touches the
// wire; the caller guarantees q.Qclass is IN and v is one of snap's
// variants (nil while withdrawn). The returned slices are shared with snap
// and must not be modified.
//
//   - outside the zone (the parent included): REFUSED;
//   - in the zone while withdrawn: the configured withdraw rcode;
//   - a query for a sheddable service name's A, AAAA or ANY that drew
//     shed: the configured withdraw rcode, marked shed (Answers.Shed);
//   - an existing name with the type: NOERROR and the RRset; the apex NS
//     RRset comes with the addresses of in-zone nameservers in additional
//     (RFC 1034 section 4.3.2 step 6), as Knot sends them;
//   - an existing name without it, or an empty non-terminal: NOERROR with
//     the SOA in authority (NODATA);
//   - a name that does not exist: NXDOMAIN with the SOA in authority.
//
// The AA bit is set on exactly the NOERROR and NXDOMAIN results.
func lookup(snap *snapshot, v *variant, q dns.Question, shed bool) decision {
	z := snap.zone
	name := strings.ToLower(q.Name) // allocates only for upper-case input
	if !z.inZone(name) {
		return decision{rcode: dns.RcodeRefused}
	}
	if !snap.serving {
		return decision{rcode: z.withdraw}
	}
	n, ok := z.nodes[name]
	if !ok {
		return decision{authority: snap.soa, rcode: dns.RcodeNameError, aa: true}
	}
	if shed && n.shed && shedType(q.Qtype) {
		return decision{rcode: z.withdraw, shed: true}
	}
	if rrs, isNS := snap.rrset(v, name, q.Qtype); len(rrs) > 0 {
		d := decision{answer: rrs, rcode: dns.RcodeSuccess, aa: true}
		if isNS {
			d.additional = v.glue
		}
		return d
	}
	return decision{authority: snap.soa, rcode: dns.RcodeSuccess, aa: true}
}
