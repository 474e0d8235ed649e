package dnsserve

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"empty zone", func(c *Config) { c.Zone = "" }, `config Zone "": empty`},
		{"relative zone", func(c *Config) { c.Zone = "pool.example.test" }, `config Zone "pool.example.test": not fully qualified (missing the trailing dot)`},
		{"root zone", func(c *Config) { c.Zone = "." }, `config Zone ".": the root zone is not allowed`},
		{"bad zone", func(c *Config) { c.Zone = "a..b." }, `config Zone "a..b.": not a valid domain name`},
		{"negative TTL", func(c *Config) { c.TTL = -time.Second }, `config TTL -1s: must be whole seconds from 0s to 2147483647s`},
		{"fractional TTL", func(c *Config) { c.TTL = 1500 * time.Millisecond }, `config TTL 1.5s: must be whole seconds from 0s to 2147483647s`},
		{"huge TTL", func(c *Config) { c.TTL = (1 << 31) * time.Second }, `config TTL 596523h14m8s: must be whole seconds from 0s to 2147483647s`},
		{"withdraw NOERROR", func(c *Config) { c.Withdraw = dns.RcodeSuccess }, `config Withdraw 0: must be 5 (REFUSED) or 2 (SERVFAIL)`},
		{"withdraw NXDOMAIN", func(c *Config) { c.Withdraw = dns.RcodeNameError }, `config Withdraw 3: must be 5 (REFUSED) or 2 (SERVFAIL)`},
		{"empty hostmaster", func(c *Config) { c.Hostmaster = "" }, `config Hostmaster "": empty`},
		{"relative hostmaster", func(c *Config) { c.Hostmaster = "hostmaster" }, `config Hostmaster "hostmaster": not fully qualified (missing the trailing dot)`},
		{"no nameservers", func(c *Config) { c.Nameservers = nil }, `config Nameservers: at least one is required`},
		{"relative nameserver", func(c *Config) { c.Nameservers = []string{"ns1.example.test"} }, `config Nameservers[0] "ns1.example.test": not fully qualified (missing the trailing dot)`},
		{"duplicate nameserver", func(c *Config) { c.Nameservers = []string{"ns1.example.test.", "NS1.example.test."} }, `config Nameservers[1] "NS1.example.test.": duplicate`},
		{"in-zone nameserver without address", func(c *Config) { c.Nameservers = []string{"ns9." + testZone} }, `config Nameservers[0] "ns9.pool.example.test.": inside the zone but has no A or AAAA in Records`},
		{"in-zone nameserver on an empty non-terminal", func(c *Config) { c.Nameservers = []string{"x." + testZone} }, `config Nameservers[0] "x.pool.example.test.": inside the zone but has no A or AAAA in Records`},
		{"empty owner", func(c *Config) { c.Records[""] = Records{A: addrs("192.0.2.1")} }, `config Records[""]: empty name (use "@" for the apex)`},
		{"absolute owner", func(c *Config) { c.Records["www.pool.example.test."] = Records{A: addrs("192.0.2.1")} }, `config Records["www.pool.example.test."]: must be relative to the zone, without a trailing dot`},
		{"wildcard owner", func(c *Config) { c.Records["*.x"] = Records{A: addrs("192.0.2.1")} }, `config Records["*.x"]: wildcards are not supported`},
		{"empty label", func(c *Config) { c.Records["a..b"] = Records{A: addrs("192.0.2.1")} }, `config Records["a..b"]: not a valid domain name`},
		{"label too long", func(c *Config) { c.Records[strings.Repeat("a", 64)] = Records{A: addrs("192.0.2.1")} }, `config Records["` + strings.Repeat("a", 64) + `"]: not a valid domain name`},
		{"escaped owner", func(c *Config) { c.Records[`a\.b`] = Records{A: addrs("192.0.2.1")} }, `config Records["a\\.b"]: escapes are not supported`},
		{"owner differing only in case", func(c *Config) { c.Records["API"] = Records{A: addrs("192.0.2.1")} }, `config Records["api"]: api.pool.example.test. is already defined by another key`},
		{"no addresses", func(c *Config) { c.Records["empty"] = Records{} }, `config Records["empty"]: no A or AAAA address`},
		{"IPv6 in A", func(c *Config) { c.Records["api"] = Records{A: addrs("2001:db8::1")} }, `config Records["api"].A[0] 2001:db8::1: not an IPv4 address`},
		{"IPv4-mapped in A", func(c *Config) { c.Records["api"] = Records{A: addrs("::ffff:192.0.2.1")} }, `config Records["api"].A[0] ::ffff:192.0.2.1: not an IPv4 address`},
		{"zero address in A", func(c *Config) { c.Records["api"] = Records{A: []netip.Addr{{}}} }, `config Records["api"].A[0] invalid IP: not an IPv4 address`},
		{"duplicate A", func(c *Config) { c.Records["api"] = Records{A: addrs("192.0.2.1", "192.0.2.2", "192.0.2.1")} }, `config Records["api"].A[2] 192.0.2.1: duplicate`},
		{"IPv4 in AAAA", func(c *Config) { c.Records["v6"] = Records{AAAA: addrs("192.0.2.1")} }, `config Records["v6"].AAAA[0] 192.0.2.1: not an IPv6 address without zone`},
		{"zoned AAAA", func(c *Config) { c.Records["v6"] = Records{AAAA: addrs("fe80::1%eth0")} }, `config Records["v6"].AAAA[0] fe80::1%eth0: not an IPv6 address without zone`},
		{"duplicate AAAA", func(c *Config) { c.Records["v6"] = Records{AAAA: addrs("2001:db8::1", "2001:db8::1")} }, `config Records["v6"].AAAA[1] 2001:db8::1: duplicate`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.modify(&cfg)
			s, err := New(zerolog.Nop(), cfg)
			if err == nil {
				t.Fatalf("New() = %v, nil; want error %q", s, tt.want)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("New() error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewAcceptsValidConfig(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
	}{
		{"test config", func(*Config) {}},
		{"zero TTL", func(c *Config) { c.TTL = 0 }},
		{"max TTL", func(c *Config) { c.TTL = maxTTL * time.Second }},
		{"withdraw SERVFAIL", func(c *Config) { c.Withdraw = dns.RcodeServerFailure }},
		{"no records", func(c *Config) { c.Records = nil; c.Nameservers = c.Nameservers[:1] }},
		{"in-zone nameserver with AAAA only", func(c *Config) { c.Nameservers = []string{"v6." + testZone} }},
		{"apex nameserver", func(c *Config) { c.Nameservers = []string{testZone} }},
		{"upper-case zone and names", func(c *Config) {
			c.Zone = "POOL.Example.TEST."
			c.Nameservers = []string{"NS1.example.test.", "Ns2.Pool.Example.Test."}
			c.Records["WWW.Deep"] = Records{A: addrs("192.0.2.99")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.modify(&cfg)
			s, err := New(zerolog.Nop(), cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if s.Serving() {
				t.Errorf("Serving() = true after New; want false (starts withdrawn)")
			}
		})
	}
}

// TestZoneNodes checks what buildZone considers existing names: the apex,
// every owner, and every empty non-terminal, all lower-case.
func TestZoneNodes(t *testing.T) {
	cfg := testConfig()
	cfg.Zone = "Pool.Example.Test."
	cfg.Records["A.B.C"] = Records{A: addrs("192.0.2.30")}
	z, err := buildZone(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for name := range z.nodes {
		got = append(got, name)
	}
	want := []string{
		"a.b.c.pool.example.test.", "a.x.pool.example.test.", "api.pool.example.test.",
		"b.c.pool.example.test.", "both.pool.example.test.", "c.pool.example.test.",
		"ns2.pool.example.test.", "pool.example.test.", "v6.pool.example.test.", "x.pool.example.test.",
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("zone nodes mismatch (-want +got):\n%s", diff)
	}
}
