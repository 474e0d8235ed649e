package dnsserve

import (
	"net/netip"
	"time"
)

// Apex is the Config.Records key that names the zone apex itself.
const Apex = "@"

// Config is the zone, the withdrawal policy, the listen addresses and the
// server options of a Server. Its values are plain; the daemon's config
// package validates them first, and New and Prepare check them again and
// return an error naming the offending field.
type Config struct {
	// Zone is the fully qualified name of the zone apex, for example
	// "pool.domain.tld.". It is matched case-insensitively and stored
	// lower-case. Required; the root zone is not allowed.
	Zone string

	// TTL is the TTL of every record served (A, AAAA, NS and SOA) and the SOA
	// MINIMUM field, which is the negative caching TTL (RFC 2308 sections 4
	// and 5). Whole seconds, from 0 to 2^31-1 seconds (RFC 2181 section 8).
	// No default.
	TTL time.Duration

	// Nameservers are the fully qualified names of the apex NS RRset (RFC
	// 1035 section 3.3.11); the first is also the SOA MNAME (RFC 1035 section
	// 3.3.13). At least one, no duplicates. A name inside Zone must have an
	// A or AAAA record in Records, or resolvers could not reach it.
	Nameservers []string

	// Hostmaster is the SOA RNAME (RFC 1035 section 3.3.13) written as a
	// domain name, for example "hostmaster.domain.tld." for
	// hostmaster@domain.tld. Required.
	Hostmaster string

	// Withdraw is the rcode answered, without records and without AA, to
	// every in-zone query while the site is withdrawn: dns.RcodeRefused or
	// dns.RcodeServerFailure (RFC 1035 section 4.1.1). Either makes a
	// resolver try another of the zone's nameservers.
	Withdraw int

	// Records maps a service name relative to Zone ("api" is
	// api.pool.domain.tld.; Apex is the apex itself) to this site's own
	// addresses for it: what the zone hands out while it serves its own
	// records (Answers with no Sets: self mode). Pool answers (Answers.Sets)
	// replace the addresses of every service name. Keys are
	// case-insensitive and must be unique once lower-cased; wildcards ("*"
	// labels, RFC 4592) are not supported.
	Records map[string]Records

	// Listen lists the "host:port" addresses served on UDP and TCP
	// (dns.listen). Bind binds them; a reload (Prepare) may change them.
	Listen []string

	// The fields below are optional: their zero value selects the default
	// that New applies (see options.go).

	// Identity is the name this server gives operators, in the NSID option
	// (RFC 5001 section 2.3) and the TXT answer to the CHAOS queries
	// "id.server." and "hostname.bind." (RFC 4892 section 2). The daemon
	// passes the site name, so that with several sites behind one name
	// "dig +nsid" tells which answered. At most 255 bytes. Default: the host
	// name.
	Identity string

	// HideIdentity turns NSID and the CHAOS identity answers off (those
	// queries are then REFUSED, like any other CHAOS query). Default false.
	HideIdentity bool

	// RRL is UDP response rate limiting; on by default.
	RRL RRL

	// CookieSecretFile names a file holding the 128-bit DNS cookie secret
	// (RFC 7873, RFC 9018 section 4.4) as 32 hex digits, so that every site
	// of the zone accepts the others' server cookies. Default "": a random
	// secret made at start.
	CookieSecretFile string

	// ReadFile reads CookieSecretFile; the daemon passes a reader that
	// opens the file once and checks its owner and mode on the descriptor
	// (config.ReadSafe). Default os.ReadFile.
	ReadFile func(path string) ([]byte, error)

	// UDPSockets is the number of UDP sockets bound to each address with
	// SO_REUSEPORT, each with its own reader goroutine. Default: GOMAXPROCS.
	UDPSockets int

	// UDPReadBuffer is the receive buffer asked for each UDP socket
	// (SO_RCVBUF), in bytes; the kernel caps it at net.core.rmem_max unless
	// the process may use SO_RCVBUFFORCE. Default 4 MiB.
	UDPReadBuffer int

	// TCPMaxConns caps concurrent TCP connections over all addresses. At
	// the cap a new connection replaces the one idle the longest, or is
	// closed if none is idle; UDP is never affected. Default 1000.
	TCPMaxConns int

	// TCPIdleTimeout is how long a TCP connection may wait for its next
	// query (RFC 7766 section 6.2.3). Default 10s.
	TCPIdleTimeout time.Duration

	// TCPQueryTimeout bounds reading one TCP query once its first byte has
	// arrived, so a client sending a byte at a time cannot hold a
	// connection (slow-loris). Default 2s.
	TCPQueryTimeout time.Duration

	// DNSSEC signs the zone when set (see Signing); nil serves it
	// unsigned. Prepare may add, change or remove it.
	DNSSEC *Signing
}

// Records are the address RRsets of one owner name. At least one address is
// required; an address may not repeat within its RRset (RFC 2181 section 5).
type Records struct {
	// A are the IPv4 addresses of the owner's A RRset (RFC 1035 section 3.4.1).
	A []netip.Addr
	// AAAA are the IPv6 addresses of the owner's AAAA RRset (RFC 3596 section 2).
	AAAA []netip.Addr
}
