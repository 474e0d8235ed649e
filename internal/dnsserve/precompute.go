package dnsserve

import (
	"encoding/binary"
	"fmt"

	"github.com/miekg/dns"
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
}

// wireNode holds one owner name's answers. The types whose answers depend
// on the variant (A, AAAA, ANY, and NS for its glue) have one answer per
// snapshot variant, by variant index (equal variants share one); SOA and
// the NODATA of every other type are the same in all. Types other than
// those listed get nodata.
type wireNode struct {
	a, aaaa, any, ns []*wireAnswer
	soa, nodata      *wireAnswer
	shed             bool // its A, AAAA and ANY answers may be shed
}

// answer returns n's answer to qtype in variant vi.
func (n *wireNode) answer(qtype uint16, vi int) *wireAnswer {
	switch qtype {
	case dns.TypeA:
		return n.a[vi]
	case dns.TypeNS:
		return n.ns[vi]
	case dns.TypeSOA:
		return n.soa
	case dns.TypeAAAA:
		return n.aaaa[vi]
	case dns.TypeANY:
		return n.any[vi]
	}
	return n.nodata
}

// buildWire precomputes every answer of snap with lookup, so the fast path
// answers exactly what the slow path would. Each distinct variant is
// packed once.
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
	if w.nxdomain, err = packAnswer(z.origin, decision{authority: snap.soa, rcode: dns.RcodeNameError, aa: true}); err != nil {
		return nil, err
	}
	nv := len(snap.variants)
	w.nodes = make(map[string]*wireNode, len(z.nodes))
	for name := range z.nodes {
		key := make([]byte, maxNameLen)
		kn, err := dns.PackDomainName(name, key, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("pack owner %s: %w", name, err)
		}
		node := &wireNode{a: make([]*wireAnswer, nv), aaaa: make([]*wireAnswer, nv), any: make([]*wireAnswer, nv), ns: make([]*wireAnswer, nv),
			shed: z.nodes[name].shed}
		pack := func(v *variant, qtype uint16) (*wireAnswer, error) {
			wa, err := packAnswer(name, lookup(snap, v, dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}, false))
			wa.ptrs = nil // the question always has the owner's length
			return &wa, err
		}
		if node.soa, err = pack(snap.variants[0], dns.TypeSOA); err != nil {
			return nil, err
		}
		if node.nodata, err = pack(snap.variants[0], dns.TypeTXT); err != nil {
			return nil, err
		}
		done := make(map[*variant]int, nv) // variant -> the index packed for it
		for vi, v := range snap.variants {
			if first, ok := done[v]; ok {
				node.a[vi], node.aaaa[vi], node.any[vi], node.ns[vi] = node.a[first], node.aaaa[first], node.any[first], node.ns[first]
				continue
			}
			done[v] = vi
			for _, t := range []struct {
				qtype uint16
				dst   []*wireAnswer
			}{{dns.TypeA, node.a}, {dns.TypeAAAA, node.aaaa}, {dns.TypeANY, node.any}, {dns.TypeNS, node.ns}} {
				if t.dst[vi], err = pack(v, t.qtype); err != nil {
					return nil, err
				}
			}
		}
		w.nodes[string(key[:kn])] = node
	}
	return w, nil
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
