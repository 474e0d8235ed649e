package resolvers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// Names of the local hierarchy.
const (
	// DomainZone is the parent zone that delegates PoolZone.
	DomainZone = "domain.tld."
	// PoolZone is the zone the sites' nameservers serve.
	PoolZone = "pool.domain.tld."
	// ServiceName is the name clients resolve: a CNAME to PoolServiceName.
	ServiceName = "api.domain.tld."
	// PoolServiceName is the name inside the pool zone that holds the sites'
	// addresses.
	PoolServiceName = "api.pool.domain.tld."
	// DefaultRootIP is the loopback address the hierarchy listens on when
	// HierarchyConfig.IP is empty.
	DefaultRootIP = "127.0.1.1"
)

// knotdBinary and knotcBinary are Knot DNS from the Debian package "knot".
const (
	knotdBinary = "/usr/sbin/knotd"
	knotcBinary = "/usr/sbin/knotc"
)

// Nameserver is one nameserver of the pool zone as the parent delegates to
// it.
type Nameserver struct {
	// Name is the nameserver's host name, fully qualified and inside
	// DomainZone (for example "alpha.domain.tld."), so that the parent
	// holds its address.
	Name string
	// IP is its IPv4 loopback address; resolvers query it on port 53.
	IP string
}

// HierarchyConfig describes the local hierarchy. Zero durations take the
// defaults named on each field.
type HierarchyConfig struct {
	// IP is the loopback address the authoritative server listens on, port
	// 53, UDP and TCP, for every zone of the hierarchy. Default
	// DefaultRootIP.
	IP string
	// Pool is the NS RRset of PoolZone as DomainZone delegates it, with
	// glue. Required.
	Pool []Nameserver
	// PoolDS are DS records of PoolZone published in DomainZone (for a
	// signed pool zone); none by default. The zones of the hierarchy are
	// not signed, so resolvers validate only below a trust anchor given to
	// them (Options.TrustAnchors).
	PoolDS []*dns.DS
	// DelegationTTL is the TTL of the NS, glue and DS records of every
	// delegation and of the nameservers' addresses. Default 1h.
	DelegationTTL time.Duration
	// CNAMETTL is the TTL of ServiceName's CNAME. Default 5m.
	CNAMETTL time.Duration
	// NegativeTTL is the SOA minimum of every zone (negative caching).
	// Default 1m.
	NegativeTTL time.Duration
}

// Hierarchy is a running local hierarchy.
type Hierarchy struct {
	// IP is the address of the root (and of every other zone of the
	// hierarchy), port 53.
	IP string
	// RootHints is the path of a root hints file naming the local root,
	// in zone file format ("named.root").
	RootHints string

	proc *testenv.Process
}

// withDefaults returns c with its defaults filled in, or an error naming
// the field that is wrong.
func (c HierarchyConfig) withDefaults() (HierarchyConfig, error) {
	if c.IP == "" {
		c.IP = DefaultRootIP
	}
	if err := checkLoopback4(c.IP); err != nil {
		return c, fmt.Errorf("hierarchy IP: %w", err)
	}
	if len(c.Pool) == 0 {
		return c, fmt.Errorf("hierarchy Pool: no nameserver")
	}
	for _, ns := range c.Pool {
		if !dns.IsFqdn(ns.Name) || !dns.IsSubDomain(DomainZone, ns.Name) || ns.Name == DomainZone {
			return c, fmt.Errorf("hierarchy Pool: %q must be a fully qualified name below %s", ns.Name, DomainZone)
		}
		if err := checkLoopback4(ns.IP); err != nil {
			return c, fmt.Errorf("hierarchy Pool %s: %w", ns.Name, err)
		}
	}
	for name, d := range map[string]*time.Duration{"DelegationTTL": &c.DelegationTTL, "CNAMETTL": &c.CNAMETTL, "NegativeTTL": &c.NegativeTTL} {
		if *d < 0 || *d%time.Second != 0 {
			return c, fmt.Errorf("hierarchy %s: %s must be whole seconds, not negative", name, *d)
		}
	}
	if c.DelegationTTL == 0 {
		c.DelegationTTL = time.Hour
	}
	if c.CNAMETTL == 0 {
		c.CNAMETTL = 5 * time.Minute
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = time.Minute
	}
	return c, nil
}

// checkLoopback4 returns an error unless ip is an IPv4 address in
// 127.0.0.0/8.
func checkLoopback4(ip string) error {
	a := net.ParseIP(ip)
	if a == nil || a.To4() == nil || !a.IsLoopback() {
		return fmt.Errorf("%q is not an IPv4 loopback address", ip)
	}
	return nil
}

// Zones returns the zone files of the hierarchy c describes, by zone name
// (".", "tld.", DomainZone), and the root hints file. It is pure: the
// caller writes the files.
func Zones(c HierarchyConfig) (zones map[string]string, hints string, err error) {
	c, err = c.withDefaults()
	if err != nil {
		return nil, "", err
	}
	deleg := int(c.DelegationTTL / time.Second)
	soa := func(b *strings.Builder, origin, mname string) {
		fmt.Fprintf(b, "$ORIGIN %s\n$TTL %d\n", origin, deleg)
		fmt.Fprintf(b, "@ SOA %s hostmaster.%s 1 3600 600 86400 %d\n", mname, strings.TrimPrefix(origin, "."), int(c.NegativeTTL/time.Second))
	}
	var root, tld, domain strings.Builder
	soa(&root, ".", "a.root.")
	fmt.Fprintf(&root, "@ NS a.root.\na.root. A %s\ntld. NS ns.tld.\nns.tld. A %s\n", c.IP, c.IP)
	soa(&tld, "tld.", "ns.tld.")
	fmt.Fprintf(&tld, "@ NS ns.tld.\nns.tld. A %s\n%s NS ns.%s\nns.%s A %s\n", c.IP, DomainZone, DomainZone, DomainZone, c.IP)
	soa(&domain, DomainZone, "ns."+DomainZone)
	fmt.Fprintf(&domain, "@ NS ns.%s\nns.%s A %s\n", DomainZone, DomainZone, c.IP)
	fmt.Fprintf(&domain, "%s %d CNAME %s\n", ServiceName, int(c.CNAMETTL/time.Second), PoolServiceName)
	seen := map[string]bool{}
	for _, ns := range c.Pool {
		fmt.Fprintf(&domain, "%s NS %s\n", PoolZone, ns.Name)
		if !seen[ns.Name+" "+ns.IP] {
			fmt.Fprintf(&domain, "%s A %s\n", ns.Name, ns.IP)
			seen[ns.Name+" "+ns.IP] = true
		}
	}
	for _, ds := range c.PoolDS {
		d := *ds
		d.Hdr = dns.RR_Header{Name: PoolZone, Rrtype: dns.TypeDS, Class: dns.ClassINET, Ttl: uint32(deleg)}
		fmt.Fprintln(&domain, d.String())
	}
	hints = fmt.Sprintf(".  3600000 IN NS a.root.\na.root. 3600000 IN A %s\n", c.IP)
	return map[string]string{".": root.String(), "tld.": tld.String(), DomainZone: domain.String()}, hints, nil
}

// knotConfig is knotd's configuration for the zone files in dir, listening
// on ip port 53.
func knotConfig(dir, ip string, zoneFiles map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
    listen: %s@53
    rundir: %s
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    version: ""
database:
    storage: %s
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: %s
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
`, ip, dir, dir, dir)
	for _, name := range []string{".", "tld.", DomainZone} {
		fmt.Fprintf(&b, "  - domain: %q\n    file: %s\n", name, zoneFiles[name])
	}
	return b.String()
}

// StartHierarchy starts knotd on c.IP port 53 with the zones Zones
// returns, and returns once it answers for every zone (within 10 s). It
// fails the test on an invalid c, a missing knotd (Debian package knot), a
// configuration knotc rejects or a knotd that does not answer. knotd is
// killed at cleanup.
func StartHierarchy(t testing.TB, c HierarchyConfig) *Hierarchy {
	t.Helper()
	zones, hints, err := Zones(c)
	if err != nil {
		t.Fatal(err)
	}
	c, _ = c.withDefaults() // checked by Zones
	for _, bin := range []string{knotdBinary, knotcBinary} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s not installed (Debian package knot; .ci/run installs it): %v", bin, err)
		}
	}
	dir := testenv.TempDir(t)
	files := map[string]string{}
	for name, text := range zones {
		f := filepath.Join(dir, "zone-"+strings.TrimSuffix(name, ".")+".txt")
		if name == "." {
			f = filepath.Join(dir, "zone-root.txt")
		}
		writeFile(t, f, text)
		files[name] = f
	}
	h := &Hierarchy{IP: c.IP, RootHints: filepath.Join(dir, "root.hints")}
	writeFile(t, h.RootHints, hints)
	conf := filepath.Join(dir, "knot.conf")
	writeFile(t, conf, knotConfig(dir, c.IP, files))
	if out, err := exec.Command(knotcBinary, "-c", conf, "conf-check").CombinedOutput(); err != nil {
		t.Fatalf("knotc conf-check: %v\n%s\n%s", err, out, knotConfig(dir, c.IP, files))
	}
	h.proc = testenv.StartProcess(t, exec.Command(knotdBinary, "-c", conf))
	addr := net.JoinHostPort(c.IP, "53")
	cl := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	for _, zone := range []string{".", "tld.", DomainZone} {
		testenv.Eventually(t, 10*time.Second, "knotd answers for "+zone, func() bool {
			select {
			case <-h.proc.Done():
				t.Fatalf("knotd exited:\n%s", h.proc.Output())
			default:
			}
			m := new(dns.Msg)
			m.SetQuestion(zone, dns.TypeSOA)
			r, _, err := cl.Exchange(m, addr)
			return err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative
		})
	}
	return h
}

// Output returns what knotd logged so far.
func (h *Hierarchy) Output() string { return h.proc.Output() }

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
