package dnsserve

// Real validators against the signed server: BIND's delv (Debian package
// bind9-dnsutils) straight at a listening Server, and dnssec-verify
// (bind9-utils) on ZoneText. CI installs both; a missing tool fails.

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

	"github.com/spdu/spdu-haproxy/internal/dnssec"
)

// delvAnchors writes a trust-anchors file (BIND 9.18 syntax) for the own
// keys of ks, as static keys, and returns its path.
func delvAnchors(t *testing.T, ks *dnssec.KeySet) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("trust-anchors {\n")
	for _, k := range ks.Own() {
		d := k.DNSKEY
		fmt.Fprintf(&b, "  %q static-key %d %d %d %q;\n", d.Hdr.Name, d.Flags, d.Protocol, d.Algorithm, d.PublicKey)
	}
	b.WriteString("};\n")
	p := filepath.Join(t.TempDir(), "anchors.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// delv runs delv at the server at addr for name and type with the trust
// anchors in anchors and returns its output.
func delv(t *testing.T, addr, anchors, name, qtype string) string {
	t.Helper()
	path, err := exec.LookPath("delv")
	if err != nil {
		t.Fatalf("delv not found (%v): install the Debian package bind9-dnsutils", err)
	}
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "@"+host, "-p", port, "-a", anchors, "+root="+testZone, name, qtype)
	b, _ := cmd.CombinedOutput()
	return string(b)
}

// TestDelvValidates asks delv, with the zone's key as trust anchor, for
// every kind of answer the signed zone gives (addresses, SOA, NS, DNSKEY,
// NXDOMAIN below a missing name and below an empty non-terminal, NODATA
// at a name and at an empty non-terminal), in self mode (own records) and
// with pool answers at the unstable TTL, with ECDSA and Ed25519 keys and a
// peer key in the DNSKEY RRset: each must be "fully validated". (delv
// asks a DS at the apex of the parent, which this server does not serve.)
func TestDelvValidates(t *testing.T) {
	for _, alg := range []uint8{dnssec.ECDSAP256SHA256, dnssec.ED25519} {
		ks := testKeys(t, alg, 1)
		cfg := testConfig()
		cfg.DNSSEC = &Signing{Keys: ks}
		s, udp, _ := startServer(t, cfg, true)
		anchors := delvAnchors(t, ks)
		pool := poolAnswers()
		pool.TTL = time.Second
		for _, ans := range []Answers{{}, pool} {
			if err := s.SetAnswers(ans); err != nil {
				t.Fatal(err)
			}
			v6 := "; fully validated"
			if len(ans.Sets) > 0 {
				v6 = "; negative response, fully validated" // pool sets hold IPv4 only
			}
			for _, q := range []struct{ name, qtype, want string }{
				{fqdn("api"), "A", "; fully validated"},
				{fqdn("both"), "A", "; fully validated"},
				{fqdn("v6"), "AAAA", v6},
				{testZone, "SOA", "; fully validated"},
				{testZone, "NS", "; fully validated"},
				{testZone, "DNSKEY", "; fully validated"},
				{fqdn("nope"), "A", "; negative response, fully validated"},
				{"deep.nope." + testZone, "AAAA", "; negative response, fully validated"},
				{fqdn("api"), "TXT", "; negative response, fully validated"},
				{fqdn("x"), "A", "; negative response, fully validated"},
				{"b.a.x." + testZone, "A", "; negative response, fully validated"},
			} {
				out := delv(t, udp, anchors, q.name, q.qtype)
				if !strings.Contains(out, q.want) {
					t.Errorf("%s, pool %t: delv %s %s: want %q:\n%s", dns.AlgorithmToString[alg], len(ans.Sets) > 0, q.name, q.qtype, q.want, out)
				}
			}
		}
	}
}

// TestZoneTextVerifies: what ZoneText prints for a signed zone passes
// dnssec-verify, in self mode and with pool answers.
func TestZoneTextVerifies(t *testing.T) {
	path, err := exec.LookPath("dnssec-verify")
	if err != nil {
		t.Fatalf("dnssec-verify not found (%v): install the Debian package bind9-utils", err)
	}
	ks := testKeys(t, dnssec.ECDSAP256SHA256, 1)
	s, _ := newSignedServer(t, ks)
	s.clock = time.Now
	for _, ans := range []Answers{{}, poolAnswers()} {
		if err := s.SetAnswers(ans); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "zone.txt")
		text := s.ZoneText()
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(path, "-z", "-o", testZone, f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Zone fully signed") {
			t.Errorf("dnssec-verify: %v\n%s\nzone:\n%s", err, out, text)
		}
	}
}

// TestZoneTextUnstableTTL: pool answers served at the unstable TTL are
// printed at their RRSIGs' Original TTL, so the dump still verifies.
func TestZoneTextUnstableTTL(t *testing.T) {
	path, err := exec.LookPath("dnssec-verify")
	if err != nil {
		t.Fatalf("dnssec-verify not found (%v): install the Debian package bind9-utils", err)
	}
	s, _ := newSignedServer(t, testKeys(t, dnssec.ED25519, 1))
	s.clock = time.Now
	pool := poolAnswers()
	pool.TTL = time.Second
	if err := s.SetAnswers(pool); err != nil {
		t.Fatal(err)
	}
	text := s.ZoneText()
	if !strings.Contains(text, "; served at TTL 1\napi.pool.example.test.\t30\tIN\tA\t") {
		t.Errorf("zone text lacks the A RRset at the Original TTL after a served-TTL comment:\n%s", text)
	}
	f := filepath.Join(t.TempDir(), "zone.txt")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, "-z", "-o", testZone, f).CombinedOutput(); err != nil || !strings.Contains(string(out), "Zone fully signed") {
		t.Errorf("dnssec-verify: %v\n%s", err, out)
	}
}
