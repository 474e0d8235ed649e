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
