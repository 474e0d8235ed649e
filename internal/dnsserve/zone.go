package dnsserve

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// zone is the immutable data built from Config once, in New, and shared by
// every snapshot. Nothing in it changes after buildZone returns.
type zone struct {
	origin   string // apex, lower-case FQDN
	ttl      uint32 // TTL of every RR and SOA MINIMUM, in seconds
	recTTL   uint32 // TTL of the Records' A and AAAA RRsets (ttl unless pool mode shortens it)
	mname    string // SOA MNAME, lower-case FQDN
	rname    string // SOA RNAME, lower-case FQDN
	withdraw int    // rcode for in-zone queries while withdrawn

	// nodes maps every lower-case owner name that exists in the zone,
	// including the apex and empty non-terminals, to its RRsets. A name
	// absent from nodes does not exist (NXDOMAIN).
	nodes map[string]*node

	// glue are the A and AAAA RRsets of the in-zone nameservers, sent in
	// additional with the apex NS RRset.
	glue []dns.RR
}

// node holds the prebuilt RRsets of one owner name. Empty slices mean the
// name exists without that type (NODATA). The slices are shared by every
// reply and must never be modified; their capacity equals their length.
type node struct {
	a    []dns.RR
	aaaa []dns.RR
	ns   []dns.RR // apex only
}

// snapshot is one immutable view of the zone in a serving state, published
// through Server.snap. The SOA lives here, not in zone, because its serial
// changes with the state.
type snapshot struct {
	zone    *zone
	serving bool
	serial  uint32    // SOA SERIAL, RFC 1982 serial number arithmetic
	soa     []dns.RR  // the apex SOA RRset carrying serial, len 1
	wire    *wireZone // every answer precomputed for the fast path
	// alts, in pool mode, are the snapshots of every precomputed ordering
	// of the sites' addresses (this snapshot is alts[0]); each query picks
	// one at random (see Server.SetPool). Nil otherwise.
	alts []*snapshot
}

// newSnapshot returns the snapshot of z in the given state and serial.
func newSnapshot(z *zone, serving bool, serial uint32) *snapshot {
	soa := &dns.SOA{
		Hdr:     z.header(z.origin, dns.TypeSOA),
		Ns:      z.mname,
		Mbox:    z.rname,
		Serial:  serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  z.ttl,
	}
	snap := &snapshot{zone: z, serving: serving, serial: serial, soa: []dns.RR{soa}}
	w, err := buildWire(snap)
	if err != nil {
		// buildZone only accepts names and records that pack.
		panic(fmt.Sprintf("dnsserve: precompute answers: %v", err))
	}
	snap.wire = w
	return snap
}

// rrset returns the RRset of type qtype at the node n named name, or nil.
// For ANY it returns a single RRset, as RFC 8482 section 4.1 allows: the
// one of lowest type, as Knot does.
func (s *snapshot) rrset(name string, n *node, qtype uint16) []dns.RR {
	switch qtype {
	case dns.TypeA:
		return n.a
	case dns.TypeAAAA:
		return n.aaaa
	case dns.TypeNS:
		return n.ns
	case dns.TypeSOA:
		if name == s.zone.origin {
			return s.soa
		}
	case dns.TypeANY:
		for _, t := range [...]uint16{dns.TypeA, dns.TypeNS, dns.TypeSOA, dns.TypeAAAA} {
			if rrs := s.rrset(name, n, t); len(rrs) > 0 {
				return rrs
			}
		}
	}
	return nil
}

// inZone reports whether the lower-case FQDN name is the apex of z or below
// it (RFC 1034 section 4.3.2 step 2).
func (z *zone) inZone(name string) bool {
	if strings.IndexByte(name, '\\') >= 0 {
		// "a\.pool.domain.tld." is one label under domain.tld.; only the
		// label-aware comparison gets escapes right. Rare, so slow is fine.
		return dns.IsSubDomain(z.origin, name)
	}
	o := z.origin
	if len(name) == len(o) {
		return name == o
	}
	return len(name) > len(o) && name[len(name)-len(o)-1] == '.' && name[len(name)-len(o):] == o
}

// nextSerial returns the serial that follows prev when the state changes at
// unix time now (seconds): the larger of prev+1 and now, compared with serial
// number arithmetic (RFC 1982 section 3.2) so that a wrap still increases.
func nextSerial(prev uint32, now int64) uint32 {
	next := prev + 1
	if t := uint32(now); int32(t-next) > 0 {
		return t
	}
	return next
}
