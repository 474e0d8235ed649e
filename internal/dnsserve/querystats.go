package dnsserve

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"
)

// QueryKey labels one counter of answered queries.
type QueryKey struct {
	// Transport is "udp" or "tcp".
	Transport string
	// Type is the question's type: "A", "AAAA", "SOA", "NS", "ANY" or
	// "other" (also for replies without a question).
	Type string
	// Rcode is the reply's rcode (RFC 1035 section 4.1.1): "NOERROR",
	// "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED" or "other".
	Rcode string
}

var (
	statTransports = [...]string{"udp", "tcp"}
	statTypes      = [...]string{"A", "AAAA", "SOA", "NS", "ANY", "other"}
	statRcodes     = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other"}
)

// queryShard is one set of counters, padded so shards do not share a cache
// line at their edges.
type queryShard struct {
	c    [len(statTransports)][len(statTypes)][len(statRcodes)]atomic.Uint64
	shed atomic.Uint64 // queries withdrawn by load shedding
	_    [64]byte
}

// queryCounters counts answered queries without locks or allocation; a
// query's shard follows its client's port, so concurrent readers rarely
// write the same counter.
type queryCounters struct {
	shards [8]queryShard
}

// count records one reply sent to from.
func (q *queryCounters) count(reply []byte, from netip.AddrPort, tcp bool) {
	if len(reply) < headerLen {
		return
	}
	t := 0
	if tcp {
		t = 1
	}
	rc := int(reply[3] & 0x0f)
	if rc > 5 {
		rc = 6
	}
	ty := len(statTypes) - 1
	if binary.BigEndian.Uint16(reply[4:]) > 0 {
		if end := questionEnd(reply); end > 0 {
			switch binary.BigEndian.Uint16(reply[end-4:]) {
			case dns.TypeA:
				ty = 0
			case dns.TypeAAAA:
				ty = 1
			case dns.TypeSOA:
				ty = 2
			case dns.TypeNS:
				ty = 3
			case dns.TypeANY:
				ty = 4
			}
		}
	}
	q.shards[from.Port()%uint16(len(q.shards))].c[t][ty][rc].Add(1)
}

// countShed records one query from from answered with the withdraw rcode
// by load shedding (Answers.Shed).
func (q *queryCounters) countShed(from netip.AddrPort) {
	q.shards[from.Port()%uint16(len(q.shards))].shed.Add(1)
}

// ShedTotal returns the number of queries shed since New: answered with
// Config.Withdraw because they drew Answers.Shed. They are counted in
// QueryStats too, under their rcode; a shed query whose reply rate
// limiting then dropped is counted here only.
func (s *Server) ShedTotal() uint64 {
	var n uint64
	for i := range s.queries.shards {
		n += s.queries.shards[i].shed.Load()
	}
	return n
}

// QueryStats returns the queries answered since New, by transport, query
// type and rcode; queries dropped (responses, runts, rate limiting) are not
// counted. Only non-zero counters are returned.
func (s *Server) QueryStats() map[QueryKey]uint64 {
	out := map[QueryKey]uint64{}
	for i := range s.queries.shards {
		sh := &s.queries.shards[i]
		for t := range statTransports {
			for ty := range statTypes {
				for rc := range statRcodes {
					if v := sh.c[t][ty][rc].Load(); v > 0 {
						out[QueryKey{statTransports[t], statTypes[ty], statRcodes[rc]}] += v
					}
				}
			}
		}
	}
	return out
}
