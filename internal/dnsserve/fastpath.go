package dnsserve

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// The fast path: a plain query (one IN question, at most an EDNS(0) OPT
// with NSID, COOKIE or padding) is parsed without allocating and answered
// by copying the snapshot's precomputed sections (precompute.go) behind the
// request's own header and question.

// ednsInfo is what a reply needs to know about a request's OPT record
// (RFC 6891 section 6.1.2).
type ednsInfo struct {
	present bool
	udpSize uint16 // requester's payload size, in bytes, as sent
	version uint8
	do      bool // DNSSEC OK (RFC 3225 section 3)
	nsid    bool // an empty NSID option was sent (RFC 5001 section 2.1)
	// cookie is the COOKIE option data (RFC 7873 section 4): 8 bytes of
	// client cookie, then 0 or 8 to 32 bytes of server cookie. It points
	// into the request.
	cookie []byte
}

// fastQuery is a request the fast path can answer from precomputed bytes:
// QUERY opcode, one IN question without compression, nothing in answer or
// authority, and at most one well-formed EDNS version 0 OPT record.
type fastQuery struct {
	qend  int // offset just past the question
	qtype uint16
	// lname holds the question name lower-cased, in wire format.
	lname    [maxNameLen]byte
	lnameLen int
	edns     ednsInfo
}

// parseFast fills q from msg and reports whether the fast path may answer
// it. It returns false for anything unusual; the slow path then decides,
// with the full parser, what the reply is. It never allocates.
func parseFast(msg []byte, q *fastQuery) bool {
	if len(msg) < headerLen {
		return false
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&(flagQR|maskOpcode) != 0 ||
		binary.BigEndian.Uint16(msg[4:]) != 1 || // QDCOUNT
		binary.BigEndian.Uint16(msg[6:]) != 0 || // ANCOUNT
		binary.BigEndian.Uint16(msg[8:]) != 0 { // NSCOUNT
		return false
	}
	arcount := binary.BigEndian.Uint16(msg[10:])
	if arcount > 1 {
		return false
	}
	off := headerLen
	n := 0
	for {
		if off >= len(msg) {
			return false
		}
		l := int(msg[off])
		if l == 0 {
			q.lname[n] = 0
			n++
			off++
			break
		}
		// Compression pointers and extended label types have no business
		// in a question that starts the message (RFC 1035 section 4.1.4).
		if l > 63 || off+1+l > len(msg) || n+1+l+1 > maxNameLen {
			return false
		}
		q.lname[n] = byte(l)
		for i, c := range msg[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			q.lname[n+1+i] = c
		}
		n += 1 + l
		off += 1 + l
	}
	q.lnameLen = n
	if off+4 > len(msg) {
		return false
	}
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	qclass := binary.BigEndian.Uint16(msg[off+2:])
	off += 4
	q.qend = off
	if qclass != classIN {
		return false
	}
	switch q.qtype {
	case 0, typeAXFR, typeIXFR, dns.TypeRRSIG:
		return false
	}
	q.edns = ednsInfo{}
	if arcount == 0 {
		return off == len(msg)
	}
	return parseOPT(msg[off:], &q.edns) && q.edns.version == 0
}

// Question types answered by the slow path only.
const (
	typeIXFR = 251
	typeAXFR = 252
)

// parseOPT parses b, which must be exactly one OPT record with a root owner,
// into e. It returns false if b is anything else, an option is malformed
// (RFC 6891 section 6.1.2; RFC 5001 section 2.3; RFC 7873 section 5.2.2) or
// an option other than NSID, COOKIE and padding is present.
func parseOPT(b []byte, e *ednsInfo) bool {
	if len(b) < 11 || b[0] != 0 || binary.BigEndian.Uint16(b[1:]) != typeOPT {
		return false
	}
	e.present = true
	e.udpSize = binary.BigEndian.Uint16(b[3:])
	e.version = b[6]
	e.do = binary.BigEndian.Uint16(b[7:])&ednsDO != 0
	rdlen := int(binary.BigEndian.Uint16(b[9:]))
	opts := b[11:]
	if len(opts) != rdlen {
		return false
	}
	for len(opts) > 0 {
		if len(opts) < 4 {
			return false
		}
		code := binary.BigEndian.Uint16(opts)
		olen := int(binary.BigEndian.Uint16(opts[2:]))
		if len(opts) < 4+olen {
			return false
		}
		data := opts[4 : 4+olen]
		switch code {
		case optNSID:
			if olen != 0 || e.nsid {
				return false
			}
			e.nsid = true
		case optCookie:
			if !validCookieLen(olen) || e.cookie != nil {
				return false
			}
			e.cookie = data
		case optPadding:
		default:
			// Options with rules of their own (EDNS Client Subnet, TCP
			// keepalive, ...) go to the slow path, whose parser checks
			// them and answers FORMERR when they are malformed.
			return false
		}
		opts = opts[4+olen:]
	}
	return true
}

// respondFast answers q from snap's precomputed wire answers in variant
// vi, shedding it if shed and the name and type may be shed (lookup). A
// query with the DO bit to a signed zone gets the signed answers; once the
// snapshot's signatures have expired it gets the withdraw rcode instead,
// like every query for a proof the snapshot did not precompute (the slow
// path answers those).
func (s *Server) respondFast(out, msg []byte, q *fastQuery, snap *snapshot, vi int, shed bool, from netip.AddrPort, tcp bool) []byte {
	w := snap.wire
	lname := q.lname[:q.lnameLen]
	do := q.edns.do && snap.signed != nil
	var wa *wireAnswer
	if node := w.nodes[string(lname)]; node != nil {
		if shed && node.shed && shedType(q.qtype) {
			wa = &w.inZone
			s.queries.countShed(from)
		} else {
			wa = node.answer(q.qtype, vi, do)
		}
	} else if !inZoneWire(lname, w.apex) {
		wa = &w.refused
	} else if !snap.serving {
		wa = &w.inZone
	} else if do {
		if wa = w.nxdomainDO[nxKey(snap.signed.chain.DenyWire(lname, q.qtype))]; wa == nil {
			return s.respondSlow(out, msg, snap, vi, shed, from, tcp)
		}
	} else {
		wa = &w.nxdomain
	}
	if do && wa != &w.refused && s.clock().Unix() >= snap.signed.expires {
		wa = &w.inZone // never an expired signature
	}

	out = append(out[:0], msg[:headerLen]...)
	flags := flagQR | binary.BigEndian.Uint16(msg[2:])&(flagRD|flagCD) | wa.flags
	binary.BigEndian.PutUint16(out[2:], flags)
	binary.BigEndian.PutUint16(out[6:], wa.an)
	binary.BigEndian.PutUint16(out[8:], wa.ns)
	binary.BigEndian.PutUint16(out[10:], wa.ar)
	out = append(out, msg[headerLen:q.qend]...)
	base := len(out)
	out = append(out, wa.body...)
	if len(wa.ptrs) > 0 {
		// The template question was the apex; this one is longer by delta
		// bytes, so everything it points to moved by delta.
		delta := uint16(q.lnameLen - len(w.apex))
		for _, p := range wa.ptrs {
			ptr := binary.BigEndian.Uint16(out[base+p:])
			binary.BigEndian.PutUint16(out[base+p:], ptr+delta)
		}
	}
	return s.finish(out, q.qend, &q.edns, 0, from, tcp)
}
