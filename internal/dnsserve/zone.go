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

// SOA timers (RFC 1035 section 3.3.13), in seconds. No secondary ever
// transfers this zone, so they only need to be sane (RFC 1912 section 2.2).
const (
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 1209600
)

// maxTTL is the largest TTL allowed by RFC 2181 section 8, in seconds.
const maxTTL = math.MaxInt32

// zone is the immutable data built from Config once, by New or Prepare, and
// shared by every snapshot: which names exist, the apex NS RRset and the
// site's own addresses. What the service names hand out at a given moment
// is a snapshot's variants (answers.go), not the zone's.
type zone struct {
	origin   string // apex, lower-case FQDN
	ttl      uint32 // TTL of every RR and SOA MINIMUM, in seconds
	mname    string // SOA MNAME, lower-case FQDN
	rname    string // SOA RNAME, lower-case FQDN
	withdraw int    // rcode for in-zone queries while withdrawn

	// nodes holds every lower-case owner name that exists in the zone: the
	// apex, the service names and the empty non-terminals above them. A
	// name absent from nodes does not exist (NXDOMAIN).
	nodes map[string]*node
	// services are the service names (the owners of Config.Records),
	// sorted, and own their own addresses by name.
	services []string
	own      map[string]Records
	// apexNS is the apex NS RRset; nsHosts the in-zone nameserver names,
	// in NS order, whose addresses go in additional with it (glue).
	apexNS  []dns.RR
	nsHosts []string
	// sign is the DNSSEC configuration; nil for an unsigned zone.
	sign *zoneSigning
}

// node is one existing owner name.
type node struct {
	// service is true for the owners of Config.Records, whose A and AAAA
	// RRsets come from the snapshot's variant.
	service bool
	// shed is true for the service names whose address queries Answers.Shed
	// may shed: every service name but the in-zone nameservers.
	shed bool
}

// buildZone validates cfg's zone fields and turns them into the immutable
// zone data shared by every snapshot. It is pure: parsing never mixes with
// serving. Errors name the Config field.
func buildZone(cfg Config) (*zone, error) {
	origin, err := canonicalFQDN(cfg.Zone)
	if err != nil {
		return nil, fmt.Errorf("config Zone %q: %w", cfg.Zone, err)
	}
	if origin == "." {
		return nil, fmt.Errorf("config Zone %q: the root zone is not allowed", cfg.Zone)
	}
	ttl, err := ttlSeconds(cfg.TTL)
	if err != nil {
		return nil, fmt.Errorf("config TTL %w", err)
	}
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
	z := &zone{
		origin:   origin,
		ttl:      ttl,
		rname:    rname,
		withdraw: cfg.Withdraw,
		nodes:    map[string]*node{origin: {}},
		own:      map[string]Records{},
	}
	if err := z.addRecords(cfg.Records); err != nil {
		return nil, err
	}
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
			if n := z.nodes[name]; n == nil || !n.service {
				return nil, fmt.Errorf("config Nameservers[%d] %q: inside the zone but has no A or AAAA in Records", i, ns)
			}
			z.nsHosts = append(z.nsHosts, name)
			z.nodes[name].shed = false
		}
		z.apexNS = append(z.apexNS, &dns.NS{Hdr: z.header(origin, dns.TypeNS, ttl), Ns: name})
		if i == 0 {
			z.mname = name
		}
	}
	z.apexNS = slices.Clip(z.apexNS)
	slices.Sort(z.services)
	if z.sign, err = resolveSigning(cfg.DNSSEC, origin); err != nil {
		return nil, err
	}
	return z, nil
}

// ttlSeconds checks that d is a TTL (whole seconds from 0 to 2^31-1, RFC
// 2181 section 8) and returns it in seconds.
func ttlSeconds(d time.Duration) (uint32, error) {
	if d < 0 || d%time.Second != 0 || d > maxTTL*time.Second {
		return 0, fmt.Errorf("%s: must be whole seconds from 0s to %ds", d, maxTTL)
	}
	return uint32(d / time.Second), nil
}

// addRecords adds the service names of recs with their own addresses, and
// the empty non-terminals above them (RFC 4592 section 2.2.2), to z.
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
		if n := z.nodes[owner]; n != nil && n.service {
			return fmt.Errorf("config Records[%q]: %s is already defined by another key", key, owner)
		}
		if len(rec.A) == 0 && len(rec.AAAA) == 0 {
			return fmt.Errorf("config Records[%q]: no A or AAAA address", key)
		}
		if err := rec.check(); err != nil {
			return fmt.Errorf("config Records[%q].%w", key, err)
		}
		n := z.node(owner)
		n.service, n.shed = true, true
		z.services = append(z.services, owner)
		z.own[owner] = Records{A: slices.Clip(slices.Clone(rec.A)), AAAA: slices.Clip(slices.Clone(rec.AAAA))}
	}
	return nil
}

// check reports the first address of r that is not of its RRset's family
// or repeats within it (RFC 2181 section 5), naming it as "A[i] addr".
func (r Records) check() error {
	for i, ip := range r.A {
		if !ip.Is4() {
			return fmt.Errorf("A[%d] %s: not an IPv4 address", i, ip)
		}
		if slices.Contains(r.A[:i], ip) {
			return fmt.Errorf("A[%d] %s: duplicate", i, ip)
		}
	}
	for i, ip := range r.AAAA {
		if !ip.Is6() || ip.Is4In6() || ip.Zone() != "" {
			return fmt.Errorf("AAAA[%d] %s: not an IPv6 address without zone", i, ip)
		}
		if slices.Contains(r.AAAA[:i], ip) {
			return fmt.Errorf("AAAA[%d] %s: duplicate", i, ip)
		}
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

// header returns an IN RR header for owner, rrtype and ttl (seconds).
func (z *zone) header(owner string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
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

// addrKey appends a's addresses to b in a fixed text form, for comparing
// address sets.
func addrKey(b []byte, a []netip.Addr) []byte {
	for _, x := range a {
		b = x.AppendTo(b)
		b = append(b, ',')
	}
	return b
}
