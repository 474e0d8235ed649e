// Package dnsserve is the authoritative DNS server for one delegated pool
// zone (for example "pool.domain.tld.") of a site.
//
// It owns the zone built from Config (apex SOA and NS, the service names
// and their own addresses), the one input of serving state (Answers, given
// with SetAnswers: refuse, serve the own records, or serve pool address
// sets in several orderings), the snapshot that joins the two with the SOA
// serial and every answer precomputed in wire format (published through an
// atomic.Pointer), the UDP and TCP sockets, and the whole protocol between
// a request's bytes and a reply's: RFC 1034 section 4.3.2 and RFC 1035
// answers, RFC 2308 negative answers, EDNS(0) (RFC 6891) with truncation
// and TCP fallback, minimal ANY (RFC 8482), NSID (RFC 5001) and CHAOS
// identity (RFC 4892), DNS cookies (RFC 7873, RFC 9018 server cookies), UDP
// response rate limiting, and TCP pipelining with idle and slow-loris
// timeouts and a connection cap (RFC 7766).
//
// It does not decide whether the site is healthy or which sites to hand
// out: the daemon's publisher does, and calls SetAnswers. It does not
// recurse, forward, transfer zones (AXFR/IXFR are NOTAUTH, or NOTIMP for
// AXFR over UDP, as Knot DNS answers), sign (no DNSSEC), take NOTIFY or
// accept dynamic updates, and it never answers data for a name outside the
// zone (REFUSED). It does not export metrics itself: RRLStats and
// QueryStats return counters for whoever does.
//
// The files follow what the package does:
//
//   - zone.go builds the immutable zone from Config (pure);
//   - answers.go turns Answers into a snapshot: one variant per ordering of
//     the service RRsets (equal orderings shared), and publishes it;
//   - lookup.go is the pure function from (snapshot, variant, question) to
//     sections and rcode (RFC 1034 section 4.3.2);
//   - precompute.go packs every answer lookup can give, per variant, in
//     wire format;
//   - fastpath.go answers a plain query from those bytes without
//     allocating: the request's own header and question (ID, flags and the
//     question's case echoed) in front of the precomputed sections;
//   - slowpath.go parses anything else with miekg/dns, judges it (guard:
//     malformed and unsupported requests), answers CHAOS identity and zone
//     transfers, and packs lookup's decision; the tests check that both
//     paths give the same bytes;
//   - respond.go is the query path both share: variant choice, EDNS,
//     cookies (cookie.go), rate limiting (rrl.go) and truncation;
//   - server.go and reload.go own the lifecycle (New, Bind, Run, Prepare,
//     Apply) and listener moves; listener.go, udp.go, udpbatch_linux.go
//     (up to 32 datagrams per recvmmsg/sendmmsg system call on 64-bit
//     Linux) and tcp.go own the sockets.
package dnsserve
