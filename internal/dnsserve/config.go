package dnsserve

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Apex is the Config.Records key that names the zone apex itself.
const Apex = "@"

// Config is the zone and withdrawal policy served by a Server. Its values are
// plain; the daemon's config package validates them first, and New checks
// them again and returns an error naming the offending field.
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

	// Records maps an owner name relative to Zone ("api" is
	// api.pool.domain.tld.; Apex is the apex itself) to its address
	// records. Keys are case-insensitive and must be unique once
	// lower-cased; wildcards ("*" labels, RFC 4592) are not supported.
	Records map[string]Records

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

	// recordTTL, set by SetPool, overrides TTL for the Records' A and AAAA
	// RRsets; 0 keeps TTL.
	recordTTL time.Duration
}

// Records are the address RRsets of one owner name. At least one address is
// required; an address may not repeat within its RRset (RFC 2181 section 5).
type Records struct {
	// A are the IPv4 addresses of the owner's A RRset (RFC 1035 section 3.4.1).
	A []netip.Addr
	// AAAA are the IPv6 addresses of the owner's AAAA RRset (RFC 3596 section 2).
	AAAA []netip.Addr
}

// SOA timers (RFC 1035 section 3.3.13), in seconds. No secondary ever
// transfers this zone, so they only need to be sane (RFC 1912 section 2.2).
const (
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 1209600
)

// maxTTL is the largest TTL allowed by RFC 2181 section 8, in seconds.
const maxTTL = math.MaxInt32

// buildZone validates cfg and turns it into the immutable zone data shared by
// every snapshot. It is pure: parsing never mixes with serving.
func buildZone(cfg Config) (*zone, error) {
	origin, err := canonicalFQDN(cfg.Zone)
	if err != nil {
		return nil, fmt.Errorf("config Zone %q: %w", cfg.Zone, err)
	}
	if origin == "." {
		return nil, fmt.Errorf("config Zone %q: the root zone is not allowed", cfg.Zone)
	}
	if cfg.TTL < 0 || cfg.TTL%time.Second != 0 || cfg.TTL > maxTTL*time.Second {
		return nil, fmt.Errorf("config TTL %s: must be whole seconds from 0s to %ds", cfg.TTL, maxTTL)
	}
	ttl := uint32(cfg.TTL / time.Second)
	if cfg.Withdraw != dns.RcodeRefused && cfg.Withdraw != dns.RcodeServerFailure {
		return nil, fmt.Errorf("config Withdraw %d: must be %d (REFUSED) or %d (SERVFAIL)",
			cfg.Withdraw, dns.RcodeRefused, dns.RcodeServerFailure)
	}
	rname, err := canonicalFQDN(cfg.Hostmaster)
	if err != nil {
		return nil, fmt.Errorf("config Hostmaster %q: %w", cfg.Hostmaster, err)
	}
	if len(cfg.Nameservers) == 0 {
		return nil, fmt.Errorf("config Nameservers: at least one is required")
	}

	recTTL := ttl
	if cfg.recordTTL > 0 {
		recTTL = uint32(cfg.recordTTL / time.Second)
	}
	z := &zone{
		origin:   origin,
		ttl:      ttl,
		recTTL:   recTTL,
		rname:    rname,
		withdraw: cfg.Withdraw,
		nodes:    map[string]*node{origin: {}},
	}
	if err := z.addRecords(cfg.Records); err != nil {
		return nil, err
	}

	apex := z.nodes[origin]
	seen := make(map[string]bool, len(cfg.Nameservers))
	for i, ns := range cfg.Nameservers {
		name, err := canonicalFQDN(ns)
		if err != nil {
			return nil, fmt.Errorf("config Nameservers[%d] %q: %w", i, ns, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("config Nameservers[%d] %q: duplicate", i, ns)
		}
		seen[name] = true
		if z.inZone(name) {
			if n := z.nodes[name]; n == nil || (len(n.a) == 0 && len(n.aaaa) == 0) {
				return nil, fmt.Errorf("config Nameservers[%d] %q: inside the zone but has no A or AAAA in Records", i, ns)
			}
		}
		apex.ns = append(apex.ns, &dns.NS{Hdr: z.header(origin, dns.TypeNS), Ns: name})
		if n := z.nodes[name]; n != nil {
			z.glue = append(z.glue, n.a...)
			z.glue = append(z.glue, n.aaaa...)
		}
		if i == 0 {
			z.mname = name
		}
	}
	apex.ns, z.glue = slices.Clip(apex.ns), slices.Clip(z.glue)
	return z, nil
}

// addRecords adds the A and AAAA RRsets of recs, and the empty non-terminals
// above their owners (RFC 4592 section 2.2.2), to z.
func (z *zone) addRecords(recs map[string]Records) error {
	// Sorted so that errors are deterministic.
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	for _, key := range keys {
		rec := recs[key]
		owner, err := z.owner(key)
		if err != nil {
			return fmt.Errorf("config Records[%q]: %w", key, err)
		}
		if n := z.nodes[owner]; n != nil && (len(n.a) > 0 || len(n.aaaa) > 0) {
			return fmt.Errorf("config Records[%q]: %s is already defined by another key", key, owner)
		}
		if len(rec.A) == 0 && len(rec.AAAA) == 0 {
			return fmt.Errorf("config Records[%q]: no A or AAAA address", key)
		}
		n := z.node(owner)
		for i, ip := range rec.A {
			if !ip.Is4() {
				return fmt.Errorf("config Records[%q].A[%d] %s: not an IPv4 address", key, i, ip)
			}
			if slices.Contains(rec.A[:i], ip) {
				return fmt.Errorf("config Records[%q].A[%d] %s: duplicate", key, i, ip)
			}
			n.a = append(n.a, &dns.A{Hdr: z.recordHeader(owner, dns.TypeA), A: ip.AsSlice()})
		}
		for i, ip := range rec.AAAA {
			if !ip.Is6() || ip.Zone() != "" {
				return fmt.Errorf("config Records[%q].AAAA[%d] %s: not an IPv6 address without zone", key, i, ip)
			}
			if slices.Contains(rec.AAAA[:i], ip) {
				return fmt.Errorf("config Records[%q].AAAA[%d] %s: duplicate", key, i, ip)
			}
			n.aaaa = append(n.aaaa, &dns.AAAA{Hdr: z.recordHeader(owner, dns.TypeAAAA), AAAA: ip.AsSlice()})
		}
		// Clipped so that an append by a caller can never write into the
		// shared backing array.
		n.a, n.aaaa = slices.Clip(n.a), slices.Clip(n.aaaa)
	}
	return nil
}

// owner turns a Config.Records key into a lower-case FQDN inside z.
func (z *zone) owner(key string) (string, error) {
	switch {
	case key == Apex:
		return z.origin, nil
	case key == "":
		return "", fmt.Errorf("empty name (use %q for the apex)", Apex)
	case strings.HasSuffix(key, "."):
		return "", fmt.Errorf("must be relative to the zone, without a trailing dot")
	case strings.ContainsRune(key, '\\'):
		return "", fmt.Errorf("escapes are not supported")
	}
	name := strings.ToLower(key) + "." + z.origin
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("not a valid domain name")
	}
	for label := range strings.SplitSeq(key, ".") {
		if label == "*" {
			return "", fmt.Errorf("wildcards are not supported")
		}
	}
	return name, nil
}

// node returns the node of owner, creating it and every missing empty
// non-terminal between it and the apex.
func (z *zone) node(owner string) *node {
	n := z.nodes[owner]
	if n == nil {
		n = &node{}
		z.nodes[owner] = n
	}
	for name := owner; name != z.origin; {
		i, _ := dns.NextLabel(name, 0)
		name = name[i:]
		if z.nodes[name] == nil {
			z.nodes[name] = &node{}
		}
	}
	return n
}

// header returns an IN RR header for owner and rrtype with the zone TTL.
func (z *zone) header(owner string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: z.ttl}
}

// recordHeader is header with the service records' TTL (pool mode may
// shorten it while the answer is unstable).
func (z *zone) recordHeader(owner string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: z.recTTL}
}

// canonicalFQDN checks that s is a fully qualified domain name without
// escapes and returns it lower-case.
func canonicalFQDN(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty")
	}
	if !dns.IsFqdn(s) {
		return "", fmt.Errorf("not fully qualified (missing the trailing dot)")
	}
	if strings.ContainsRune(s, '\\') {
		return "", fmt.Errorf("escapes are not supported")
	}
	if _, ok := dns.IsDomainName(s); !ok {
		return "", fmt.Errorf("not a valid domain name")
	}
	return strings.ToLower(s), nil
}
