package dnssec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// names returns the owner names of z with their types, for NewChain.
func (z testZone) names() map[string][]uint16 {
	m := map[string][]uint16{}
	for _, set := range z.rrsets {
		h := set[0].Header()
		m[h.Name] = append(m[h.Name], h.Rrtype)
	}
	return m
}

// chain builds z's NSEC chain or fails the test.
func (z testZone) chain(t testing.TB) *Chain {
	t.Helper()
	c, err := NewChain(z.soa, z.names())
	if err != nil {
		t.Fatalf("NewChain: %v", err)
	}
	return c
}

// signedZone is z with its NSEC chain, every RRset signed by ks at now: the
// RRsets in zone order, and one signature set per RRset.
type signedZone struct {
	rrsets [][]dns.RR
	sigs   [][]*dns.RRSIG
}

// sign signs every RRset of z and of its NSEC chain with ks at now.
func (z testZone) sign(t testing.TB, ks *KeySet, now time.Time, validity time.Duration) signedZone {
	t.Helper()
	var s signedZone
	s.rrsets = append(s.rrsets, z.rrsets...)
	for _, n := range z.chain(t).Records() {
		s.rrsets = append(s.rrsets, []dns.RR{n})
	}
	for _, set := range s.rrsets {
		sigs, err := ks.Sign(set, now, validity)
		if err != nil {
			t.Fatalf("Sign %s: %v", set[0].Header().Name, err)
		}
		s.sigs = append(s.sigs, sigs)
	}
	return s
}

// masterFile returns s in master-file format, one record a line.
func (s signedZone) masterFile() string {
	var b strings.Builder
	for i, set := range s.rrsets {
		for _, rr := range set {
			b.WriteString(rr.String() + "\n")
		}
		for _, sig := range s.sigs[i] {
			b.WriteString(sig.String() + "\n")
		}
	}
	return b.String()
}

// writeZone writes s as a master file in a temporary directory and returns
// its path.
func writeZone(t testing.TB, s signedZone) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pool.zone")
	if err := os.WriteFile(path, []byte(s.masterFile()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
