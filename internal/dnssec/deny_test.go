package dnssec

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// ownerOf names the owner of NSEC i, or "-" for -1.
func ownerOf(c *Chain, i int) string {
	if i < 0 {
		return "-"
	}
	return strings.TrimSuffix(c.NSEC(i).Hdr.Name, zone)
}

func TestDeny(t *testing.T) {
	c := smallZone(t, newKeySet(t, []*Key{newKey(t, ED25519)}, nil)).chain(t)
	// Chain: @ -> api -> ns1 -> ns2 -> www -> a.x -> @; x is an empty
	// non-terminal. Owners below are relative to the zone, "@" the apex.
	for _, tc := range []struct {
		qname    string
		qtype    uint16
		result   Result
		match    string
		wildcard string
	}{
		{"api", dns.TypeA, Exists, "api.", "-"},
		{"API", dns.TypeAAAA, Exists, "api.", "-"},
		{"api", dns.TypeANY, Exists, "api.", "-"},
		{"api", dns.TypeNSEC, Exists, "api.", "-"},
		{"api", dns.TypeRRSIG, Exists, "api.", "-"},
		{"@", dns.TypeDNSKEY, Exists, "", "-"},
		{"@", dns.TypeSOA, Exists, "", "-"},
		// NODATA at a name with RRsets: its own NSEC (RFC 4035 3.1.3.1).
		{"api", dns.TypeTXT, NoData, "api.", "-"},
		{"www", dns.TypeAAAA, NoData, "www.", "-"},
		{"ns1", dns.TypeMX, NoData, "ns1.", "-"},
		{"@", dns.TypeDS, NoData, "", "-"},
		{"@", dns.TypeCNAME, NoData, "", "-"},
		// NODATA at the empty non-terminal x: the NSEC covering it
		// (www -> a.x), whose next name is below x.
		{"x", dns.TypeA, NoData, "www.", "-"},
		{"X", dns.TypeANY, NoData, "www.", "-"},
		{"x", dns.TypeNSEC, NoData, "www.", "-"},
		// NXDOMAIN: the NSEC covering the name and the NSEC covering the
		// wildcard at the closest encloser (RFC 4035 3.1.3.2).
		{"nope", dns.TypeA, NXDomain, "api.", ""},        // api < nope < ns1; *.@ between @ and api
		{"b", dns.TypeA, NXDomain, "api.", ""},           // api < b < ns1
		{"aaa", dns.TypeA, NXDomain, "", "-"},            // @ < aaa < api: covers *.@ too
		{"zzz", dns.TypeA, NXDomain, "a.x.", ""},         // after the last owner
		{"b.api", dns.TypeA, NXDomain, "api.", "-"},      // encloser api; *.api covered by api too
		{"c.b.api", dns.TypeAAAA, NXDomain, "api.", "-"}, //
		{"b.x", dns.TypeA, NXDomain, "a.x.", "www."},     // encloser the ENT x; *.x before a.x
		{"b.a.x", dns.TypeA, NXDomain, "a.x.", "-"},      // encloser a.x
		{"y", dns.TypeA, NXDomain, "a.x.", ""},           // x < y, so a.x covers it
		{"a.nope", dns.TypeA, NXDomain, "api.", ""},      // encloser the apex
		{"-", dns.TypeA, NXDomain, "", "-"},              // @ < "-" < api, and "*" too
		{"!", dns.TypeA, NXDomain, "", "-"},              // "!" (0x21) before "*" (0x2a)
		// Outside the zone.
		{"domain.tld.", dns.TypeA, OutOfZone, "-", "-"},
		{"tld.", dns.TypeA, OutOfZone, "-", "-"},
		{".", dns.TypeNS, OutOfZone, "-", "-"},
		{"other.tld.", dns.TypeA, OutOfZone, "-", "-"},
		{"xpool.domain.tld.", dns.TypeA, OutOfZone, "-", "-"},
	} {
		name := tc.qname
		switch {
		case name == "@":
			name = zone
		case !strings.HasSuffix(name, "."):
			name += "." + zone
		}
		t.Run(fmt.Sprintf("%s/%s", name, dns.TypeToString[tc.qtype]), func(t *testing.T) {
			d, err := c.Deny(name, tc.qtype)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%s %s %s", d.Result, ownerOf(c, d.Match), ownerOf(c, d.Wildcard))
			want := fmt.Sprintf("%s %s %s", tc.result, tc.match, tc.wildcard)
			if got != want {
				t.Errorf("Deny = %s, want %s", got, want)
			}
			checkProof(t, c, name, d)
		})
	}
	if _, err := c.Deny("a..b", dns.TypeA); err == nil {
		t.Error("Deny of an invalid name succeeded")
	}
}

// covers reports whether nsec matches or covers name: owner <= name < next,
// or name after the owner of the last NSEC, whose next is the apex.
func covers(nsec *dns.NSEC, name string) bool {
	if Compare(nsec.Hdr.Name, name) > 0 {
		return false
	}
	return Compare(name, nsec.NextDomain) < 0 || Compare(nsec.NextDomain, nsec.Hdr.Name) <= 0
}

// checkProof checks d's records as a validator reads them.
func checkProof(t *testing.T, c *Chain, name string, d Denial) {
	t.Helper()
	proof := c.Proof(d)
	switch d.Result {
	case Exists, OutOfZone:
		if proof != nil {
			t.Errorf("Proof of %s = %v, want none", d.Result, proof)
		}
		return
	case NoData:
		n := proof[0].(*dns.NSEC)
		if len(proof) != 1 || !covers(n, name) {
			t.Fatalf("NODATA proof %v does not match or cover %s", proof, name)
		}
		if Compare(n.Hdr.Name, name) != 0 && !dns.IsSubDomain(name, n.NextDomain) {
			t.Errorf("NODATA at an empty non-terminal: next name %s is not below %s", n.NextDomain, name)
		}
	case NXDomain:
		n := proof[0].(*dns.NSEC)
		if !covers(n, name) || Compare(n.Hdr.Name, name) == 0 {
			t.Fatalf("NXDOMAIN proof %s does not cover %s", n, name)
		}
		// The closest encloser is the longest common ancestor of name
		// with the covering NSEC's owner or next name (RFC 4035 5.4).
		ce := zone
		for _, other := range []string{n.Hdr.Name, n.NextDomain} {
			if l := dns.CompareDomainName(name, other); l > dns.CountLabel(ce) {
				labels := dns.SplitDomainName(name)
				ce = strings.Join(labels[len(labels)-l:], ".") + "."
			}
		}
		wild := "*." + ce
		if !covers(proof[len(proof)-1].(*dns.NSEC), wild) {
			t.Errorf("NXDOMAIN proof %v does not cover the wildcard %s", proof, wild)
		}
		if len(proof) == 2 && covers(n, wild) {
			t.Errorf("NXDOMAIN proof %v: the wildcard's NSEC duplicates the first", proof)
		}
	}
}

// TestDenyReference compares DenyWire with a slow reference over many names:
// the owners, their ancestors, and names around them.
func TestDenyReference(t *testing.T) {
	z := testZone{soa: testSOA(t)}
	z.rrsets = append(z.rrsets, []dns.RR{z.soa})
	z.rrsets = append(z.rrsets, parseRRsets(t, `
@ 30 IN NS ns1
ns1 30 IN A 192.0.2.1
a.b.c 30 IN A 192.0.2.1
d.b.c 30 IN A 192.0.2.1
c 30 IN TXT "c"
e.f 30 IN A 192.0.2.1
g.h.i.j 30 IN AAAA ::1
-z 30 IN A 192.0.2.1
\200 30 IN A 192.0.2.1
`)...)
	c := z.chain(t)
	types := z.names()
	var owners []string
	for _, n := range c.Records() {
		owners = append(owners, n.Hdr.Name)
	}
	exists := func(n string) bool {
		for _, o := range owners {
			if dns.IsSubDomain(n, o) {
				return true
			}
		}
		return false
	}
	var names []string
	for _, o := range owners {
		labels := dns.SplitDomainName(o)
		for i := range labels {
			anc := strings.Join(labels[i:], ".") + "."
			for _, p := range []string{"", "a.", "z.", "*.", "0.", "-.", "!.", "zz.a.", `\255.`} {
				names = append(names, p+anc)
			}
		}
	}
	for _, n := range names {
		if !dns.IsSubDomain(zone, n) {
			continue
		}
		for _, qtype := range []uint16{dns.TypeA, dns.TypeTXT} {
			d, err := c.Deny(n, qtype)
			if err != nil {
				t.Fatal(err)
			}
			var want Result
			switch {
			case !exists(n):
				want = NXDomain
			case slices.Contains(types[dns.CanonicalName(n)], qtype):
				want = Exists
			default:
				want = NoData
			}
			if d.Result != want {
				t.Errorf("Deny(%s, %s) = %s, want %s", n, dns.TypeToString[qtype], d.Result, want)
				continue
			}
			if d.Result != Exists {
				checkProof(t, c, dns.CanonicalName(n), d)
			}
		}
	}
}

func TestDenyWireAllocs(t *testing.T) {
	c := smallZone(t, nil).chain(t)
	for _, name := range []string{"b.x." + zone, "nope." + zone, "api." + zone, "x." + zone, "other.tld."} {
		w, _ := wireName(name)
		if n := testing.AllocsPerRun(100, func() { c.DenyWire(w, dns.TypeA) }); n != 0 {
			t.Errorf("DenyWire(%s) allocates %v times", name, n)
		}
		if n := testing.AllocsPerRun(100, func() { c.Cover(w) }); n != 0 {
			t.Errorf("Cover(%s) allocates %v times", name, n)
		}
	}
}
