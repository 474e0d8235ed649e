package dnsserve

import (
	"strings"

	"github.com/miekg/dns"
)

// lookup chooses the reply to q from snap (RFC 1034 section 4.3.2, RFC 2308
// sections 2.1 and 2.2). It is pure and never touches the wire; the caller
// guarantees q.Qclass is IN. The returned slices are shared with snap and
// must not be modified.
//
//   - outside the zone (the parent included): REFUSED;
//   - in the zone while withdrawn: the configured withdraw rcode;
//   - AXFR and IXFR: REFUSED (no zone transfers);
//   - an existing name with the type: NOERROR and the RRset;
//   - an existing name without it, or an empty non-terminal: NOERROR with
//     the SOA in authority (NODATA);
//   - a name that does not exist: NXDOMAIN with the SOA in authority.
//
// The AA bit belongs on exactly the NOERROR and NXDOMAIN results; see
// authoritative.
func lookup(snap *snapshot, q dns.Question) (answer, authority []dns.RR, rcode int) {
	z := snap.zone
	name := strings.ToLower(q.Name) // allocates only for upper-case input
	if !z.inZone(name) {
		return nil, nil, dns.RcodeRefused
	}
	if !snap.serving {
		return nil, nil, z.withdraw
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		return nil, nil, dns.RcodeRefused
	}
	n, ok := z.nodes[name]
	if !ok {
		return nil, snap.soa, dns.RcodeNameError
	}
	if rrs := snap.rrset(name, n, q.Qtype); len(rrs) > 0 {
		return rrs, nil, dns.RcodeSuccess
	}
	return nil, snap.soa, dns.RcodeSuccess
}

// authoritative reports whether a reply with rcode, as chosen by lookup, is
// an authoritative answer from the zone and so carries AA (RFC 1035 section
// 4.1.1).
func authoritative(rcode int) bool {
	return rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError
}
