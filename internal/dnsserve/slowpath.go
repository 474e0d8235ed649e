package dnsserve

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// ednsUDPSize is the EDNS(0) UDP payload size advertised in every reply that
// carries an OPT record, and the largest UDP reply sent, in bytes (RFC 6891
// section 6.2.5; 1232 is the DNS Flag Day 2020 value that avoids IP
// fragmentation).
const ednsUDPSize = 1232

// ServeDNS answers one request through the same path as the listeners; it
// implements dns.Handler for callers that bring their own dns.Server. It is
// safe for concurrent use and recovers from panics by answering SERVFAIL.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Interface("panic", v).Msg("recovered panic while serving a query; answering SERVFAIL")
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			if err := w.WriteMsg(m); err != nil {
				s.log.Debug().Err(err).Msg("write SERVFAIL reply")
			}
		}
	}()
	raddr := w.RemoteAddr()
	_, tcp := raddr.(*net.TCPAddr)
	var from netip.AddrPort
	switch a := raddr.(type) {
	case *net.UDPAddr:
		from = a.AddrPort()
	case *net.TCPAddr:
		from = a.AddrPort()
	}
	req, err := r.Pack()
	if err != nil {
		panic(err) // answered SERVFAIL above
	}
	if reply := s.respond(make([]byte, 0, minUDPSize), req, from, tcp); reply != nil {
		if _, err := w.Write(reply); err != nil {
			s.log.Debug().Err(err).Msg("write reply")
		}
	}
}

// respondSlow answers any request the fast path declined, parsing it with
// miekg/dns; decide chooses the reply.
func (s *Server) respondSlow(out, msg []byte, snap *snapshot, vi int, shed bool, from netip.AddrPort, tcp bool) []byte {
	qend := headerLen
	if binary.BigEndian.Uint16(msg[4:]) > 0 {
		if qend = questionEnd(msg); qend < 0 {
			return nil // no question to answer, as Knot: drop
		}
	}
	req := new(dns.Msg)
	if err := req.Unpack(msg); err != nil || messageEnd(msg) != len(msg) {
		// The question is sound but something after it is not (a cut
		// OPT, trailing bytes): FORMERR echoing the question, as Knot.
		out = headerReply(out, msg, dns.RcodeFormatError)
		if qend > headerLen {
			binary.BigEndian.PutUint16(out[4:], 1)
			out = append(out, msg[headerLen:qend]...)
		}
		return s.finish(out, qend, &ednsInfo{}, 0, from, tcp)
	}
	var v *variant
	if snap.serving {
		v = snap.variants[vi]
	}
	d := decide(snap, v, s.live.Load().opts.identity, req, tcp, shed)
	if d.shed {
		s.queries.countShed(from)
	}
	if opt := req.IsEdns0(); opt != nil && opt.Do() && snap.signed != nil && d.aa && req.Question[0].Qclass == dns.ClassINET {
		if s.clock().Unix() >= snap.signed.expires {
			d = decision{rcode: snap.zone.withdraw} // never an expired signature
		} else {
			q := req.Question[0]
			d = snap.signed.signDecision(v, strings.ToLower(q.Name), q.Qtype, d)
		}
	}
	m := new(dns.Msg)
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	if req.Opcode == dns.OpcodeQuery {
		m.RecursionDesired = req.RecursionDesired
		m.CheckingDisabled = req.CheckingDisabled
	}
	if len(req.Question) > 0 {
		// Packed lower-case so that names compress against the question
		// whatever its case, as the fast path's do; the received bytes go
		// back in below (0x20 echo).
		q := req.Question[0]
		q.Name = strings.ToLower(q.Name)
		m.Question = []dns.Question{q}
	}
	m.Rcode = d.rcode & 0xF // the upper bits go in the OPT record
	m.Authoritative = d.aa
	m.Answer, m.Ns, m.Extra, m.Compress = d.answer, d.authority, d.additional, true
	b, err := m.PackBuffer(out[:cap(out)])
	if err != nil {
		panic(err) // records from the zone always pack; answered SERVFAIL
	}
	qend = headerLen
	if len(m.Question) > 0 {
		qend = nameEnd(b, headerLen) + 4
		if raw := nameEnd(msg, headerLen); raw == qend-4 && foldEqual(msg[headerLen:raw], b[headerLen:raw]) {
			copy(b[headerLen:], msg[headerLen:raw])
		}
	}
	e := ednsOf(req)
	return s.finish(b, qend, &e, uint8(d.rcode>>4), from, tcp)
}

// decision is the reply chosen for a request, before it is packed.
type decision struct {
	answer, authority, additional []dns.RR
	rcode                         int
	aa                            bool
	shed                          bool // withdrawn by load shedding
}

// decide is the one place that maps a parsed request to a reply. It is pure:
// guard judges the request, CHAOS queries get the identity, zone transfers
// are turned down as Knot turns them down when no transfer is allowed
// (NOTAUTH; AXFR over UDP, which RFC 5936 section 4.2 rules out, NOTIMP),
// and lookup gives the zone's answer in variant v, shed if shed. identity
// is "" when hidden; tcp is the transport of the request.
func decide(snap *snapshot, v *variant, identity string, r *dns.Msg, tcp, shed bool) decision {
	if rcode := guard(r); rcode != dns.RcodeSuccess {
		return decision{rcode: rcode}
	}
	q := r.Question[0]
	switch {
	case q.Qclass == dns.ClassCHAOS:
		return chaos(identity, q)
	case q.Qclass != dns.ClassINET:
		return decision{rcode: dns.RcodeRefused}
	case q.Qtype == 0:
		return decision{rcode: dns.RcodeNotImplemented} // as Knot
	case q.Qtype == dns.TypeAXFR && !tcp:
		return decision{rcode: dns.RcodeNotImplemented}
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		return decision{rcode: dns.RcodeNotAuth}
	}
	return lookup(snap, v, q, shed)
}

// guard judges a request before lookup. It returns dns.RcodeSuccess if the
// request may be looked up, or else the rcode of the error reply:
//
//   - opcode other than QUERY (NOTIFY, UPDATE, ...): NOTIMP (RFC 1035
//     section 4.1.1);
//   - QDCOUNT other than 1: FORMERR (RFC 1035 section 4.1.2 in practice
//     allows exactly one question);
//   - more than one OPT record, or an OPT outside the additional section:
//     FORMERR (RFC 6891 section 6.1.1);
//   - a COOKIE option of a bad length, or two of them: FORMERR (RFC 7873
//     section 5.2.2);
//   - EDNS version other than 0: BADVERS (RFC 6891 section 6.1.3).
//
// Responses (QR set) never get here: respond drops them unparsed.
func guard(r *dns.Msg) int {
	switch {
	case r.Opcode != dns.OpcodeQuery:
		return dns.RcodeNotImplemented
	case len(r.Question) != 1:
		return dns.RcodeFormatError
	}
	for _, rr := range append(r.Answer[:len(r.Answer):len(r.Answer)], r.Ns...) {
		if rr.Header().Rrtype == dns.TypeOPT {
			return dns.RcodeFormatError
		}
	}
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil || o.Hdr.Name != "." {
				return dns.RcodeFormatError
			}
			opt = o
		}
	}
	if opt == nil {
		return dns.RcodeSuccess
	}
	cookies := 0
	for _, o := range opt.Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			cookies++
			if cookies > 1 || len(c.Cookie)%2 != 0 || !validCookieLen(len(c.Cookie)/2) {
				return dns.RcodeFormatError
			}
		}
	}
	if opt.Version() != 0 {
		return dns.RcodeBadVers
	}
	return dns.RcodeSuccess
}

// ednsOf returns what finish needs of r's OPT record.
// With several OPT records there is none to trust: the FORMERR goes out
// without OPT, as Knot's does.
func ednsOf(r *dns.Msg) ednsInfo {
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil {
				return ednsInfo{}
			}
			opt = o
		}
	}
	if opt == nil {
		return ednsInfo{}
	}
	e := ednsInfo{present: true, udpSize: opt.UDPSize(), version: opt.Version(), do: opt.Do()}
	for _, o := range opt.Option {
		switch o := o.(type) {
		case *dns.EDNS0_NSID:
			e.nsid = true
		case *dns.EDNS0_COOKIE:
			if b, err := hex.DecodeString(o.Cookie); err == nil && validCookieLen(len(b)) {
				e.cookie = b
			}
		}
	}
	return e
}

// CHAOS names that ask for the server's identity (RFC 4892 section 2).
var identityNames = map[string]bool{"id.server.": true, "hostname.bind.": true}

// chaos answers a CHAOS-class question: TXT for id.server. or hostname.bind.
// carries identity, with TTL 0 and without AA, as Knot and NSD answer;
// everything else, version.bind. included, is REFUSED.
func chaos(identity string, q dns.Question) decision {
	if identity == "" || q.Qtype != dns.TypeTXT || !identityNames[strings.ToLower(q.Name)] {
		return decision{rcode: dns.RcodeRefused}
	}
	txt := &dns.TXT{
		Hdr: dns.RR_Header{Name: strings.ToLower(q.Name), Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS},
		Txt: []string{identity},
	}
	return decision{answer: []dns.RR{txt}, rcode: dns.RcodeSuccess}
}

// logReply logs one reply at debug level.
func logReply(ev *zerolog.Event, msg, reply []byte, from netip.AddrPort, tcp bool) {
	flags := binary.BigEndian.Uint16(reply[2:])
	ev = ev.Uint16("id", binary.BigEndian.Uint16(msg)).Stringer("remote", from).Bool("tcp", tcp).
		Str("rcode", rcodeName(int(flags&0xF))).Bool("truncated", flags&flagTC != 0).
		Uint16("answers", binary.BigEndian.Uint16(reply[6:]))
	if binary.BigEndian.Uint16(reply[4:]) > 0 {
		if name, off, err := dns.UnpackDomainName(reply, headerLen); err == nil && off+4 <= len(reply) {
			ev = ev.Str("qname", name).Str("qtype", dns.Type(binary.BigEndian.Uint16(reply[off:])).String())
		}
	}
	ev.Msg("query")
}

// rcodeName returns the mnemonic of rcode. Unlike dns.RcodeToString it names
// 16 BADVERS, its meaning in a reply to a query with OPT (RFC 6891 section
// 9), rather than BADSIG (TSIG, RFC 8945).
func rcodeName(rcode int) string {
	if rcode == dns.RcodeBadVers {
		return "BADVERS"
	}
	return dns.RcodeToString[rcode]
}

// foldEqual reports whether the wire-format names a and b are equal but for
// ASCII case; a compression pointer in either makes them differ.
func foldEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
