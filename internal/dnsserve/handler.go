package dnsserve

import (
	"net"

	"github.com/miekg/dns"
)

// ednsUDPSize is the EDNS(0) UDP payload size advertised in every reply that
// carries an OPT record, in bytes (RFC 6891 section 6.2.5; 1232 is the DNS
// Flag Day 2020 value that avoids IP fragmentation).
const ednsUDPSize = 1232

// noReply is the guard result for a request that gets no reply at all.
const noReply = -1

// ServeDNS answers one request; it implements dns.Handler. It is safe for
// concurrent use, never blocks on state changes, and recovers from panics by
// answering SERVFAIL.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error().Interface("panic", v).Msg("recovered panic while serving a query; answering SERVFAIL")
			if r != nil && w != nil {
				s.reply(w, r, nil, nil, dns.RcodeServerFailure)
			}
		}
	}()

	switch rcode := guard(r); rcode {
	case dns.RcodeSuccess:
	case noReply:
		return
	default:
		s.reply(w, r, nil, nil, rcode)
		return
	}
	answer, authority, rcode := lookup(s.snap.Load(), r.Question[0])
	s.reply(w, r, answer, authority, rcode)
}

// guard is the one place that judges a request before lookup. It returns
// dns.RcodeSuccess if the request may be looked up, noReply if it must be
// dropped, or else the rcode of the error reply:
//
//   - QR set (a response, RFC 1035 section 4.1.1): dropped, so that two
//     servers can never loop;
//   - opcode other than QUERY (NOTIFY, UPDATE, ...): NOTIMP (RFC 1035
//     section 4.1.1);
//   - QDCOUNT other than 1: FORMERR (RFC 1035 section 4.1.2 in practice
//     allows exactly one question);
//   - more than one OPT record: FORMERR (RFC 6891 section 6.1.1);
//   - EDNS version other than 0: BADVERS (RFC 6891 section 6.1.3);
//   - class other than IN: REFUSED (the zone only exists in IN).
//
// The dns.Server built by Run already drops responses before parsing (see
// acceptRequest); guard repeats the check for any other caller of ServeDNS.
func guard(r *dns.Msg) int {
	switch {
	case r.Response:
		return noReply
	case r.Opcode != dns.OpcodeQuery:
		return dns.RcodeNotImplemented
	case len(r.Question) != 1:
		return dns.RcodeFormatError
	}
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil {
				return dns.RcodeFormatError
			}
			opt = o
		}
	}
	if opt != nil && opt.Version() != 0 {
		return dns.RcodeBadVers
	}
	if r.Question[0].Qclass != dns.ClassINET {
		return dns.RcodeRefused
	}
	return dns.RcodeSuccess
}

// acceptRequest is the dns.MsgAcceptFunc of the servers built by Run. It
// drops responses (QR set) without parsing them and lets every request
// through, so that guard, not the library, decides FORMERR and NOTIMP.
// Requests whose body does not parse are still answered FORMERR by the
// library itself, and packets shorter than a header are dropped.
func acceptRequest(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15 // RFC 1035 section 4.1.1
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// outMsg holds a reply and its OPT record in one allocation. The OPT cannot
// be shared between replies: packing writes the extended rcode into it.
type outMsg struct {
	msg   dns.Msg
	opt   dns.OPT
	extra [1]dns.RR
}

// reply is the one function that writes a reply to r, successful or not. AA
// is set exactly for NOERROR and NXDOMAIN from the zone; an OPT record is
// added if and only if r has one (RFC 6891 section 7), echoing the DO bit
// (RFC 3225 section 3); UDP replies are truncated to the requester's payload
// size, capped at ednsUDPSize, with TC set (RFC 6891 section 6.2.5, RFC 2181
// section 9). A write error is logged at debug: the client is gone.
func (s *Server) reply(w dns.ResponseWriter, r *dns.Msg, answer, authority []dns.RR, rcode int) {
	out := &outMsg{}
	m := &out.msg
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	if r.Opcode == dns.OpcodeQuery {
		m.RecursionDesired = r.RecursionDesired
		m.CheckingDisabled = r.CheckingDisabled
	}
	if len(r.Question) > 0 {
		// Echo the question exactly as received (case included) without
		// copying it; r is not used after this reply.
		m.Question = r.Question[:1:1]
	}
	m.Rcode = rcode
	m.Authoritative = authoritative(rcode)
	m.Answer = answer
	m.Ns = authority

	size := dns.MinMsgSize
	if ropt := r.IsEdns0(); ropt != nil {
		opt := &out.opt
		opt.Hdr = dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}
		opt.SetUDPSize(ednsUDPSize)
		if ropt.Do() {
			opt.SetDo()
		}
		out.extra[0] = opt
		m.Extra = out.extra[:]
		size = min(max(int(ropt.UDPSize()), dns.MinMsgSize), ednsUDPSize)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		m.Truncate(size)
	}
	m.Compress = true

	err := w.WriteMsg(m)
	if ev := s.log.Debug(); ev.Enabled() {
		ev = ev.Uint16("id", r.Id).Stringer("remote", w.RemoteAddr()).Str("rcode", rcodeName(rcode)).
			Int("answers", len(m.Answer)).Bool("truncated", m.Truncated)
		if len(r.Question) > 0 {
			q := r.Question[0]
			ev = ev.Str("qname", q.Name).Str("qtype", dns.Type(q.Qtype).String()).Str("qclass", dns.Class(q.Qclass).String())
		}
		if err != nil {
			ev.Err(err).Msg("write reply")
		} else {
			ev.Msg("query")
		}
	}
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
