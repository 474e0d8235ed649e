package dnsserve

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/dnssec"
)

// wireAnswer is the precomputed part of a reply that follows the question:
// the answer and authority sections, packed with names compressed against
// the question as the reply will carry it (RFC 1035 section 4.1.4).
type wireAnswer struct {
	flags      uint16 // the AA and RCODE bits of the reply header
	an, ns, ar uint16 // ANCOUNT, NSCOUNT and ARCOUNT (OPT not included)
	body       []byte
	// ptrs are the offsets in body of compression pointers that must move
	// by the difference between the question's length and the template
	// question's; set only for answers shared by many names (NXDOMAIN).
	ptrs []int
}

// wireZone is a snapshot's answers in wire format, keyed so that the fast
// path never allocates: a map lookup with string(bytes) does not copy.
type wireZone struct {
	apex []byte // lower-case wire-format apex name
	// nodes maps each lower-case wire-format owner name to its answers;
	// empty while withdrawn.
	nodes    map[string]*wireNode
	nxdomain wireAnswer // template question: the apex
	inZone   wireAnswer // every in-zone reply while withdrawn
	refused  wireAnswer // out of zone
	// nxdomainDO are a signed zone's NXDOMAIN answers with their proofs
	// for the DO bit, by nxKey of the denial of snapshot.signed.chain
	// (template question: the apex); nil for an unsigned zone.
	nxdomainDO map[uint32]*wireAnswer
}

// nxKey is the key of an NXDOMAIN proof in wireZone.nxdomainDO.
func nxKey(d dnssec.Denial) uint32 {
	return uint32(d.Match)<<16 | uint32(d.Wildcard+1)
}

// wireNode holds one owner name's answers: plain, and signed (with RRSIGs
// and NSEC proofs, for the DO bit) in a signed zone.
type wireNode struct {
	plain  nodeAnswers
	signed *nodeAnswers // nil for an unsigned zone
	shed   bool         // its A, AAAA and ANY answers may be shed
}

// nodeAnswers are one owner name's answers. The types whose answers depend
// on the variant (A, AAAA, ANY, and NS for its glue) have one answer per
// snapshot variant, by variant index (equal variants share one); the
// others are the same in all. A type without an answer of its own gets
// nodata; so do dnskey and nsec when nil (an unsigned zone, a name
// without them).
type nodeAnswers struct {
	a, aaaa, any, ns          []*wireAnswer
	soa, nodata, dnskey, nsec *wireAnswer
}

// answer returns n's answer to qtype in variant vi, signed if do and the
// zone is signed.
func (n *wireNode) answer(qtype uint16, vi int, do bool) *wireAnswer {
	na := &n.plain
	if do && n.signed != nil {
		na = n.signed
	}
	switch qtype {
	case dns.TypeA:
		return na.a[vi]
	case dns.TypeNS:
		return na.ns[vi]
	case dns.TypeSOA:
		return na.soa
	case dns.TypeAAAA:
		return na.aaaa[vi]
	case dns.TypeANY:
		return na.any[vi]
	case dns.TypeDNSKEY:
		if na.dnskey != nil {
			return na.dnskey
		}
	case dns.TypeNSEC:
		if na.nsec != nil {
			return na.nsec
		}
	}
	return na.nodata
}

// buildWire precomputes every answer of snap with lookup (and, signed,
// signDecision), so the fast path answers exactly what the slow path
// would. Each distinct variant is packed once.
func buildWire(snap *snapshot) (*wireZone, error) {
	z := snap.zone
	apex := make([]byte, maxNameLen)
	n, err := dns.PackDomainName(z.origin, apex, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("pack apex %s: %w", z.origin, err)
	}
	w := &wireZone{
		apex:    apex[:n:n],
		refused: wireAnswer{flags: dns.RcodeRefused},
		inZone:  wireAnswer{flags: uint16(z.withdraw)},
	}
	if !snap.serving {
		return w, nil
	}
	nx := decision{authority: snap.soa, rcode: dns.RcodeNameError, aa: true}
	if w.nxdomain, err = packAnswer(z.origin, nx); err != nil {
		return nil, err
	}
	if snap.signed != nil {
		if err := buildNXDomainDO(w, snap, nx); err != nil {
			return nil, err
		}
	}
	w.nodes = make(map[string]*wireNode, len(z.nodes))
	for name := range z.nodes {
		key := make([]byte, maxNameLen)
		kn, err := dns.PackDomainName(name, key, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("pack owner %s: %w", name, err)
		}
		node := &wireNode{shed: z.nodes[name].shed}
		if node.plain, err = nodeWire(snap, name, false); err != nil {
			return nil, err
		}
		if snap.signed != nil {
			signed, err := nodeWire(snap, name, true)
			if err != nil {
				return nil, err
			}
			node.signed = &signed
		}
		w.nodes[string(key[:kn])] = node
	}
	return w, nil
}

// nodeWire packs the answers of the existing name, signed if signed.
func nodeWire(snap *snapshot, name string, signed bool) (nodeAnswers, error) {
	nv := len(snap.variants)
	na := nodeAnswers{a: make([]*wireAnswer, nv), aaaa: make([]*wireAnswer, nv), any: make([]*wireAnswer, nv), ns: make([]*wireAnswer, nv)}
	pack := func(v *variant, qtype uint16) (*wireAnswer, error) {
		d := lookup(snap, v, dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}, false)
		if signed {
			d = snap.signed.signDecision(v, name, qtype, d)
		}
		wa, err := packAnswer(name, d)
		wa.ptrs = nil // the question always has the owner's length
		return &wa, err
	}
	var err error
	v0 := snap.variants[0]
	if na.soa, err = pack(v0, dns.TypeSOA); err != nil {
		return na, err
	}
	if na.nodata, err = pack(v0, dns.TypeTXT); err != nil {
		return na, err
	}
	if snap.signed != nil {
		if name == snap.zone.origin {
			if na.dnskey, err = pack(v0, dns.TypeDNSKEY); err != nil {
				return na, err
			}
		}
		if snap.signed.nsec[name] != nil {
			if na.nsec, err = pack(v0, dns.TypeNSEC); err != nil {
				return na, err
			}
		}
	}
	done := make(map[*variant]int, nv) // variant -> the index packed for it
	for vi, v := range snap.variants {
		if first, ok := done[v]; ok {
			na.a[vi], na.aaaa[vi], na.any[vi], na.ns[vi] = na.a[first], na.aaaa[first], na.any[first], na.ns[first]
			continue
		}
		done[v] = vi
		for _, t := range []struct {
			qtype uint16
			dst   []*wireAnswer
		}{{dns.TypeA, na.a}, {dns.TypeAAAA, na.aaaa}, {dns.TypeANY, na.any}, {dns.TypeNS, na.ns}} {
			if t.dst[vi], err = pack(v, t.qtype); err != nil {
				return na, err
			}
		}
	}
	return na, nil
}

// buildNXDomainDO packs the signed NXDOMAIN answers of every proof a name
// that does not exist can need: for each existing name E (the closest
// encloser), the wildcard "*.E" is covered by one NSEC, and a missing name
// below E by one of the NSEC records from E's to the last of E's
// descendants (RFC 4035 section 3.1.3.2). The question of the template is
// the apex, as for the unsigned NXDOMAIN.
func buildNXDomainDO(w *wireZone, snap *snapshot, nx decision) error {
	ss := snap.signed
	w.nxdomainDO = map[uint32]*wireAnswer{}
	n := ss.chain.Len()
	for name := range snap.zone.nodes {
		wname, _ := wireLower(name)
		star, _ := wireLower("*." + name)
		wc := ss.chain.Cover(star)
		first := ss.chain.Cover(wname)
		for i := first; ; i = (i + 1) % n {
			d := dnssec.Denial{Result: dnssec.NXDomain, Match: i, Wildcard: wc}
			if d.Wildcard == d.Match {
				d.Wildcard = -1
			}
			if _, ok := w.nxdomainDO[nxKey(d)]; !ok {
				sd := nx
				sd.authority = ss.withSigs(nil, nx.authority)
				for _, rr := range ss.chain.Proof(d) {
					sd.authority = append(sd.authority, rr)
					sd.authority = append(sd.authority, ss.shared[rrKey{rr.Header().Name, dns.TypeNSEC}]...)
				}
				wa, err := packAnswer(snap.zone.origin, sd)
				if err != nil {
					return err
				}
				w.nxdomainDO[nxKey(d)] = &wa
			}
			next := (i + 1) % n
			if next == 0 || !dns.IsSubDomain(name, ss.chain.NSEC(next).Hdr.Name) {
				break
			}
		}
	}
	return nil
}

// wireLower returns name (a valid FQDN) in lower-case wire format.
func wireLower(name string) ([]byte, error) {
	b := make([]byte, maxNameLen)
	n, err := dns.PackDomainName(strings.ToLower(name), b, 0, nil, false)
	return b[:n], err
}

// packAnswer packs the sections of d as a reply to a question for qname and
// returns what follows the question, with the offsets of its compression
// pointers.
func packAnswer(qname string, d decision) (wireAnswer, error) {
	m := &dns.Msg{Question: []dns.Question{{Name: qname, Qtype: dns.TypeA, Qclass: dns.ClassINET}}}
	m.Answer, m.Ns, m.Extra, m.Compress = d.answer, d.authority, d.additional, true
	b, err := m.Pack()
	if err != nil {
		return wireAnswer{}, fmt.Errorf("pack answer for %s: %w", qname, err)
	}
	qend := nameEnd(b, headerLen) + 4
	wa := wireAnswer{
		an: uint16(len(d.answer)), ns: uint16(len(d.authority)), ar: uint16(len(d.additional)),
		body: b[qend:len(b):len(b)], flags: uint16(d.rcode),
	}
	if d.aa {
		wa.flags |= flagAA
	}
	if wa.ptrs, err = pointerOffsets(wa.body, len(d.answer)+len(d.authority)+len(d.additional), qend); err != nil {
		return wireAnswer{}, fmt.Errorf("pack answer for %s: %w", qname, err)
	}
	return wa, nil
}

// pointerOffsets walks count RRs in body and returns the offsets of the
// compression pointers in their owner names and in the rdata names of the
// types this server packs with compression (NS, SOA). Pointers in body are
// checked to point before base+offset, into the question or earlier RRs.
func pointerOffsets(body []byte, count, base int) ([]int, error) {
	var ptrs []int
	name := func(off int) (int, error) {
		for off < len(body) {
			l := int(body[off])
			switch {
			case l == 0:
				return off + 1, nil
			case l&0xC0 == 0xC0:
				if off+2 > len(body) || int(binary.BigEndian.Uint16(body[off:])&0x3FFF) >= base+off {
					return 0, fmt.Errorf("bad compression pointer at %d", off)
				}
				ptrs = append(ptrs, off)
				return off + 2, nil
			}
			off += 1 + l
		}
		return 0, fmt.Errorf("name runs past the end")
	}
	off := 0
	for range count {
		var err error
		if off, err = name(off); err != nil {
			return nil, err
		}
		if off+10 > len(body) {
			return nil, fmt.Errorf("RR header runs past the end")
		}
		rrtype := binary.BigEndian.Uint16(body[off:])
		rdEnd := off + 10 + int(binary.BigEndian.Uint16(body[off+8:]))
		off += 10
		switch rrtype {
		case dns.TypeNS:
			_, err = name(off)
		case dns.TypeSOA:
			if off, err = name(off); err == nil {
				_, err = name(off)
			}
		}
		if err != nil {
			return nil, err
		}
		off = rdEnd
	}
	if off != len(body) {
		return nil, fmt.Errorf("%d bytes after the last RR", len(body)-off)
	}
	return ptrs, nil
}
