// Package dnsserve is the authoritative DNS server for one delegated pool
// zone (for example "pool.domain.tld.") of a site.
//
// It owns the zone built from Config (apex SOA and NS, A and AAAA RRsets),
// the site's serving state as seen by DNS (SERVING or WITHDRAWN, published as
// an immutable snapshot through an atomic.Pointer together with the SOA
// serial), the UDP and TCP listeners, and the mapping from a question to a
// reply (RFC 1034 section 4.3.2, RFC 1035, RFC 2308 negative answers, RFC
// 6891 EDNS(0)).
//
// It does not decide whether the site is healthy: the caller calls
// SetServing, and logs state changes. It does not recurse, forward, transfer
// zones (AXFR/IXFR are REFUSED), sign (no DNSSEC) or accept dynamic updates.
//
// The code is split so that choosing an answer never touches the wire:
// lookup is a pure function from (snapshot, question) to (answer, authority,
// rcode), ServeDNS guards the request and writes, and Run owns the sockets.
package dnsserve
