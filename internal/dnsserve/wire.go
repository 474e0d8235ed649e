package dnsserve

import "encoding/binary"

// Wire-format constants (RFC 1035 section 4.1, RFC 6891 section 6.1).
const (
	headerLen  = 12     // DNS message header, in bytes
	maxNameLen = 255    // longest wire-format domain name, in bytes
	flagQR     = 0x8000 // response
	flagAA     = 0x0400 // authoritative answer
	flagTC     = 0x0200 // truncated
	flagRD     = 0x0100 // recursion desired
	flagCD     = 0x0010 // checking disabled (RFC 4035 section 3.2.2)
	maskOpcode = 0x7800
	ednsDO     = 0x8000 // DNSSEC OK, in the OPT TTL's low 16 bits (RFC 3225)
	typeOPT    = 41
	classIN    = 1
	optNSID    = 3  // RFC 5001 section 2.3
	optCookie  = 10 // RFC 7873 section 4
	optPadding = 12 // RFC 7830 section 3
)

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
	case 0, typeAXFR, typeIXFR:
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

// validCookieLen reports whether a COOKIE option of n bytes is well formed:
// a client cookie alone, or with a server cookie of 8 to 32 bytes (RFC 7873
// section 5.2.2).
func validCookieLen(n int) bool {
	return n == 8 || (n >= 16 && n <= 40)
}

// nameEnd returns the offset just past the uncompressed or compressed name
// starting at off in msg, or -1 if it does not fit.
func nameEnd(msg []byte, off int) int {
	for off < len(msg) {
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xC0 == 0xC0:
			if off+2 > len(msg) {
				return -1
			}
			return off + 2
		case l > 63:
			return -1
		}
		off += 1 + l
	}
	return -1
}

// inZone reports whether the lower-case wire name lname is apex or below it,
// comparing at label boundaries.
func inZoneWire(lname, apex []byte) bool {
	if len(lname) < len(apex) {
		return false
	}
	skip := len(lname) - len(apex)
	off := 0
	for off < skip {
		off += 1 + int(lname[off])
	}
	return off == skip && string(lname[skip:]) == string(apex)
}

// questionEnd returns the offset just past the first question of msg, or -1
// if it is not a well-formed uncompressed name (labels of at most 63 bytes,
// at most maxNameLen in all) followed by type and class.
func questionEnd(msg []byte) int {
	off, n := headerLen, 0
	for off < len(msg) {
		l := int(msg[off])
		if l > 63 {
			return -1
		}
		n += 1 + l
		off += 1 + l
		if n > maxNameLen {
			return -1
		}
		if l == 0 {
			if off+4 > len(msg) {
				return -1
			}
			return off + 4
		}
	}
	return -1
}

// messageEnd returns the offset just past the last record that the header
// counts announce, or -1 if they run past the end of msg.
func messageEnd(msg []byte) int {
	off := headerLen
	for range binary.BigEndian.Uint16(msg[4:]) {
		if off = nameEnd(msg, off); off < 0 || off+4 > len(msg) {
			return -1
		}
		off += 4
	}
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	for range rrs {
		if off = nameEnd(msg, off); off < 0 || off+10 > len(msg) {
			return -1
		}
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
		if off > len(msg) {
			return -1
		}
	}
	return off
}
