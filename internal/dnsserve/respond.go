package dnsserve

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// Reply size limits (RFC 1035 section 4.2.1, RFC 6891 section 6.2.5).
const (
	minUDPSize  = 512   // bytes without EDNS, and the floor of any EDNS size
	maxTCPReply = 65535 // bytes, the TCP length prefix's range
)

// respond is the whole query path: it appends to out[:0] the reply to the
// request msg from the client at from over TCP (tcp) or UDP, and returns it,
// or nil when no reply is due (a response, a runt, a rate-limited drop).
// Requests the fast path understands are answered from precomputed bytes
// without allocating; anything else goes to the slow path, which parses
// with miekg/dns. Both end in finish, so EDNS, cookies, rate limiting and
// truncation are the same on both. A panic is answered SERVFAIL.
func (s *Server) respond(out, msg []byte, from netip.AddrPort, tcp bool) (reply []byte) {
	if len(msg) < headerLen || msg[2]&0x80 != 0 {
		// Too short to answer, or QR set: a response is never answered,
		// so two servers cannot loop (RFC 1035 section 4.1.1).
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Interface("panic", v).Msg("recovered panic while serving a query; answering SERVFAIL")
			reply = headerReply(out, msg, rcodeServFail)
		}
	}()
	snap := s.snap.Load()
	vi := 0
	if n := len(snap.variants); n > 1 {
		vi = rand.IntN(n) // runtime-local ChaCha8: no lock, no allocation
	}
	// Load shedding draws once per query, before the name is known; only
	// the names and types lookup allows are shed.
	shed := snap.shedBelow != 0 && rand.Uint64() < snap.shedBelow
	var q fastQuery
	if parseFast(msg, &q) {
		reply = s.respondFast(out, msg, &q, snap, vi, shed, from, tcp)
	} else {
		reply = s.respondSlow(out, msg, snap, vi, shed, from, tcp)
	}
	if reply != nil {
		s.queries.count(reply, from, tcp)
		if ev := s.log.Debug(); ev.Enabled() {
			logReply(ev, msg, reply, from, tcp)
		}
	}
	return reply
}

// rcodeServFail is SERVFAIL (RFC 1035 section 4.1.1).
const rcodeServFail = 2

// finish completes a reply whose header, question (ending at qend) and
// sections are in out: it applies rate limiting to UDP, appends the OPT
// record if the request had one (RFC 6891 section 7) with the extended
// rcode bits extRcode, NSID and COOKIE options, and truncates a UDP reply
// larger than the requester can take (RFC 6891 section 6.2.5): TC set and
// every section but the question and OPT emptied, like Knot and NSD, so no
// RRset is ever partial (RFC 2181 section 9). It returns nil to drop.
func (s *Server) finish(out []byte, qend int, e *ednsInfo, extRcode uint8, from netip.AddrPort, tcp bool) []byte {
	lv := s.live.Load()
	ip := from.Addr().Unmap()
	validCookie := false
	var now uint32
	if e.cookie != nil {
		now = uint32(s.clock().Unix())
		validCookie = lv.validCookie(e.cookie, ip, now)
	}
	if !tcp && lv.rrl != nil {
		if validCookie {
			lv.rrl.cookieExempt.Add(1)
		} else {
			switch lv.rrl.check(ip, s.clock()) {
			case rrlDrop:
				return nil
			case rrlSlip:
				out = truncate(out, qend)
			}
		}
	}
	if !e.present {
		if !tcp && len(out) > minUDPSize {
			out = truncate(out, qend)
		}
		return out
	}
	out = lv.appendOPT(out, e, extRcode, ip, now)
	if !tcp && len(out) > int(min(max(e.udpSize, minUDPSize), ednsUDPSize)) {
		out = lv.appendOPT(truncate(out, qend), e, extRcode, ip, now)
	}
	return out
}

// truncate returns out cut back to its header and question, with TC set
// and the record counts zeroed.
func truncate(out []byte, qend int) []byte {
	binary.BigEndian.PutUint16(out[2:], binary.BigEndian.Uint16(out[2:])|flagTC)
	binary.BigEndian.PutUint32(out[6:], 0)
	binary.BigEndian.PutUint16(out[10:], 0)
	return out[:qend]
}

// appendOPT appends the reply's OPT record and increments ARCOUNT: payload
// size ednsUDPSize, version 0, the DO bit echoed (RFC 3225 section 3), NSID
// if asked for and not hidden (RFC 5001 section 2.3), and a COOKIE with a
// fresh server cookie if the request had a client cookie (RFC 7873 section
// 5.2).
func (lv *liveOptions) appendOPT(out []byte, e *ednsInfo, extRcode uint8, ip netip.Addr, now uint32) []byte {
	binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	var flags uint16
	if e.do {
		flags = ednsDO
	}
	out = append(out, 0, 0, typeOPT, byte(ednsUDPSize>>8), byte(ednsUDPSize&0xff), extRcode, 0, byte(flags>>8), byte(flags))
	rdlen := len(out)
	out = append(out, 0, 0)
	if id := lv.opts.identity; e.nsid && id != "" {
		out = binary.BigEndian.AppendUint16(out, optNSID)
		out = binary.BigEndian.AppendUint16(out, uint16(len(id)))
		out = append(out, id...)
	}
	if e.cookie != nil {
		out = binary.BigEndian.AppendUint16(out, optCookie)
		out = binary.BigEndian.AppendUint16(out, clientCookieLen+serverCookieLen)
		out = append(out, e.cookie[:clientCookieLen]...)
		out = lv.cookies.appendServerCookie(out, e.cookie[:clientCookieLen], ip, now)
	}
	binary.BigEndian.PutUint16(out[rdlen:], uint16(len(out)-rdlen-2))
	return out
}

// headerReply appends to out[:0] a reply to msg made of its header alone,
// with rcode: the ID, opcode and RD are echoed, every count is zero. It
// answers requests that cannot be parsed (FORMERR) and panics (SERVFAIL).
func headerReply(out, msg []byte, rcode uint16) []byte {
	out = append(out[:0], msg[:headerLen]...)
	flags := binary.BigEndian.Uint16(msg[2:])
	flags = flagQR | flags&(maskOpcode|flagRD) | rcode&0xF
	binary.BigEndian.PutUint16(out[2:], flags)
	clear(out[4:headerLen])
	return out
}
