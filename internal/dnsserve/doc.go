// Package dnsserve is the authoritative DNS server for one delegated pool
// zone (for example "pool.domain.tld.") of a site.
//
// It owns the zone built from Config (apex SOA and NS, A and AAAA RRsets),
// the site's serving state as seen by DNS (SERVING or WITHDRAWN, published as
// an immutable snapshot through an atomic.Pointer together with the SOA
// serial and every answer precomputed in wire format), the UDP and TCP
// sockets, and the whole protocol between a request's bytes and a reply's:
// RFC 1034 section 4.3.2 and RFC 1035 answers, RFC 2308 negative answers,
// EDNS(0) (RFC 6891) with truncation and TCP fallback, minimal ANY (RFC
// 8482), NSID (RFC 5001) and CHAOS identity (RFC 4892), DNS cookies (RFC
// 7873, RFC 9018 server cookies), UDP response rate limiting, and TCP
// pipelining with idle and slow-loris timeouts and a connection cap (RFC
// 7766).
//
// It does not decide whether the site is healthy: the caller calls
// SetServing, and logs state changes. It does not recurse, forward, transfer
// zones (AXFR/IXFR are NOTAUTH, or NOTIMP for AXFR over UDP, as Knot DNS
// answers), sign (no DNSSEC), take NOTIFY or accept dynamic updates, and it
// never answers data for a name outside the zone (REFUSED). It does not
// export metrics itself: RRLStats returns counters for whoever does.
//
// The query path (respond.go) has two routes that end in the same finish
// step (EDNS, cookies, rate limiting, truncation). The fast path
// (wire.go, precompute.go) takes a plain single-question IN query, looks
// its lower-cased name up in the snapshot and copies the precomputed
// sections behind the request's own header and question (ID, flags and the
// question's case echoed), without allocating. Anything else takes the slow
// path (handler.go), which parses with miekg/dns; there decide maps a
// request to a reply through guard (malformed and unsupported requests),
// chaos and lookup, a pure function from (snapshot, question) to sections
// and rcode. The precomputed answers are built by the same lookup, and the
// tests check that both routes give the same bytes. Run owns the sockets
// (listener.go, tcp.go, and udp.go or, on 64-bit Linux, udpbatch_linux.go,
// which moves up to 32 datagrams per recvmmsg/sendmmsg system call).
package dnsserve
