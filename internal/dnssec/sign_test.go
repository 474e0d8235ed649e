package dnssec

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// canonicalSignedData builds the data an RRSIG signs (RFC 4034 section
// 3.1.8.1) independently of miekg/dns's signer: the RRSIG RDATA without the
// signature, then each RR of rrset in canonical form (RFC 4034 section 6.2:
// lower-case owner and embedded names, TTL the Original TTL) and canonical
// order (section 6.3: by RDATA octets, duplicates once).
func canonicalSignedData(t *testing.T, sig *dns.RRSIG, rrset []dns.RR) []byte {
	t.Helper()
	var out []byte
	out = binary.BigEndian.AppendUint16(out, sig.TypeCovered)
	out = append(out, sig.Algorithm, sig.Labels)
	out = binary.BigEndian.AppendUint32(out, sig.OrigTtl)
	out = binary.BigEndian.AppendUint32(out, sig.Expiration)
	out = binary.BigEndian.AppendUint32(out, sig.Inception)
	out = binary.BigEndian.AppendUint16(out, sig.KeyTag)
	out = append(out, packName(t, strings.ToLower(sig.SignerName))...)
	var rdatas [][]byte
	for _, rr := range rrset {
		// The names of the types in these tests: owner, NS and SOA.
		c := dns.Copy(rr)
		c.Header().Name = strings.ToLower(c.Header().Name)
		switch x := c.(type) {
		case *dns.NS:
			x.Ns = strings.ToLower(x.Ns)
		case *dns.SOA:
			x.Ns, x.Mbox = strings.ToLower(x.Ns), strings.ToLower(x.Mbox)
		}
		buf := make([]byte, 512)
		n, err := dns.PackRR(c, buf, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		_, off, _ := dns.UnpackDomainName(buf[:n], 0)
		rdatas = append(rdatas, buf[off+10:n])
	}
	slices.SortFunc(rdatas, func(a, b []byte) int { return strings.Compare(string(a), string(b)) })
	rdatas = slices.CompactFunc(rdatas, func(a, b []byte) bool { return string(a) == string(b) })
	owner := packName(t, strings.ToLower(rrset[0].Header().Name))
	for _, rd := range rdatas {
		out = append(out, owner...)
		out = binary.BigEndian.AppendUint16(out, rrset[0].Header().Rrtype)
		out = binary.BigEndian.AppendUint16(out, dns.ClassINET)
		out = binary.BigEndian.AppendUint32(out, sig.OrigTtl)
		out = binary.BigEndian.AppendUint16(out, uint16(len(rd)))
		out = append(out, rd...)
	}
	return out
}

// packName returns the uncompressed wire format of name.
func packName(t *testing.T, name string) []byte {
	t.Helper()
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		t.Fatalf("pack %s: %v", name, err)
	}
	return buf[:n]
}

// verifyIndependently checks sig over rrset with k's public key on the
// signed data built by canonicalSignedData, with crypto/ecdsa or
// crypto/ed25519 directly.
func verifyIndependently(t *testing.T, k *Key, sig *dns.RRSIG, rrset []dns.RR) bool {
	t.Helper()
	data := canonicalSignedData(t, sig, rrset)
	raw, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil {
		t.Fatal(err)
	}
	switch pub := k.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		h := sha256.Sum256(data)
		r, s := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
		return len(raw) == 64 && ecdsa.Verify(pub, h[:], r, s)
	case ed25519.PublicKey:
		return ed25519.Verify(pub, data, raw)
	}
	t.Fatalf("key type %T", k.Signer.Public())
	return false
}

func TestSign(t *testing.T) {
	for _, alg := range []uint8{ECDSAP256SHA256, ED25519} {
		t.Run(algorithmName(alg), func(t *testing.T) {
			a, b := newKey(t, alg), newKey(t, alg)
			ks := newKeySet(t, []*Key{a, b}, nil)
			const validity = 10 * 24 * time.Hour
			for _, set := range smallZone(t, ks).rrsets {
				h := set[0].Header()
				t.Run(h.Name+"/"+dns.TypeToString[h.Rrtype], func(t *testing.T) {
					sigs, err := ks.Sign(set, testNow, validity)
					if err != nil {
						t.Fatal(err)
					}
					if len(sigs) != 2 {
						t.Fatalf("got %d signatures, want one per own key (2)", len(sigs))
					}
					for i, k := range []*Key{a, b} {
						sig := sigs[i]
						want := dns.RRSIG{
							Hdr:         dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl, Rdlength: sig.Hdr.Rdlength},
							TypeCovered: h.Rrtype, Algorithm: alg, Labels: uint8(dns.CountLabel(h.Name)), OrigTtl: h.Ttl,
							Expiration: uint32(testNow.Add(validity).Unix()), Inception: uint32(testNow.Add(-time.Hour).Unix()),
							KeyTag: k.Tag, SignerName: zone, Signature: sig.Signature,
						}
						if *sig != want {
							t.Errorf("RRSIG\n got %s\nwant %s", sig, &want)
						}
						if err := sig.Verify(k.DNSKEY, set); err != nil {
							t.Errorf("RRSIG.Verify: %v", err)
						}
						if !verifyIndependently(t, k, sig, set) {
							t.Errorf("signature does not verify over the canonical form built here")
						}
					}
					if err := ks.Verify(set, sigs, testNow); err != nil {
						t.Errorf("KeySet.Verify: %v", err)
					}
				})
			}
		})
	}
}

// TestSignCanonical shows that one signature serves every order of the
// RRset, any served TTL up to the original, and any case of the owner: the
// signature covers the canonical form (RFC 4034 section 6).
func TestSignCanonical(t *testing.T) {
	k := newKey(t, ECDSAP256SHA256)
	ks := newKeySet(t, []*Key{k}, nil)
	set := []dns.RR{
		mustRR(t, "API.Pool.Domain.TLD. 30 IN A 198.51.100.10"),
		mustRR(t, "API.Pool.Domain.TLD. 30 IN A 192.0.2.11"),
		mustRR(t, "API.Pool.Domain.TLD. 30 IN A 192.0.2.10"),
		mustRR(t, "API.Pool.Domain.TLD. 30 IN A 192.0.2.9"),
	}
	sigs, err := ks.Sign(set, testNow, DefaultValidity)
	if err != nil {
		t.Fatal(err)
	}
	sig := sigs[0]
	served := func(order []int, ttl uint32, name string) []dns.RR {
		var out []dns.RR
		for _, i := range order {
			c := dns.Copy(set[i])
			c.Header().Ttl = ttl
			c.Header().Name = name
			out = append(out, c)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		rrset []dns.RR
	}{
		{"as signed", set},
		{"reversed", served([]int{3, 2, 1, 0}, 30, set[0].Header().Name)},
		{"rotated, lower TTL", served([]int{2, 3, 0, 1}, 7, set[0].Header().Name)},
		{"lower-case owner", served([]int{1, 0, 3, 2}, 30, "api.pool.domain.tld.")},
		{"duplicate record", served([]int{0, 1, 2, 3, 3}, 30, "api.pool.domain.tld.")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := sig.Verify(k.DNSKEY, tc.rrset); err != nil {
				t.Errorf("RRSIG.Verify: %v", err)
			}
			if !verifyIndependently(t, k, sig, tc.rrset) {
				t.Error("does not verify over the canonical form built here")
			}
		})
	}
	t.Run("another address", func(t *testing.T) {
		other := served([]int{0, 1, 2}, 30, set[0].Header().Name)
		other = append(other, mustRR(t, "api.pool.domain.tld. 30 IN A 192.0.2.99"))
		if err := sig.Verify(k.DNSKEY, other); err == nil {
			t.Error("signature verifies a different RRset")
		}
		if err := ks.Verify(other, sigs, testNow); err == nil {
			t.Error("KeySet.Verify accepts a different RRset")
		}
	})
	// NS and SOA carry names in their RDATA, which the canonical form
	// lower-cases (RFC 4034 section 6.2 item 3).
	t.Run("names in RDATA", func(t *testing.T) {
		upper := []dns.RR{mustRR(t, zone+" 300 IN NS NS1.Pool.Domain.TLD."), mustRR(t, zone+" 300 IN NS ns2.pool.domain.tld.")}
		lower := []dns.RR{mustRR(t, zone+" 300 IN NS ns2.pool.domain.tld."), mustRR(t, zone+" 300 IN NS ns1.pool.domain.tld.")}
		sigs, err := ks.Sign(upper, testNow, DefaultValidity)
		if err != nil {
			t.Fatal(err)
		}
		if err := sigs[0].Verify(k.DNSKEY, lower); err != nil {
			t.Errorf("signature over upper-case NS targets does not verify the lower-case RRset: %v", err)
		}
		if !verifyIndependently(t, k, sigs[0], lower) {
			t.Error("does not verify over the canonical form built here")
		}
	})
}

func TestSignLabels(t *testing.T) {
	ks := newKeySet(t, []*Key{newKey(t, ED25519)}, nil)
	for _, tc := range []struct {
		owner  string
		labels uint8
		err    bool
	}{
		{zone, 3, false},
		{"a.x." + zone, 5, false},
		{"*." + zone, 3, false},
		{"*.x." + zone, 4, false},
		{"*x." + zone, 0, true},
	} {
		t.Run(tc.owner, func(t *testing.T) {
			sigs, err := ks.Sign([]dns.RR{mustRR(t, tc.owner+" 30 IN A 192.0.2.1")}, testNow, DefaultValidity)
			if (err != nil) != tc.err {
				t.Fatalf("Sign: %v, want error %v", err, tc.err)
			}
			if err == nil && sigs[0].Labels != tc.labels {
				t.Errorf("Labels = %d, want %d", sigs[0].Labels, tc.labels)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	ks := newKeySet(t, []*Key{newKey(t, ECDSAP256SHA256)}, nil)
	a := func(s string) dns.RR { return mustRR(t, s) }
	for _, tc := range []struct {
		name     string
		rrset    []dns.RR
		validity time.Duration
		want     string
	}{
		{"empty", nil, DefaultValidity, "empty RRset"},
		{"two owners", []dns.RR{a("a." + zone + " 30 IN A 192.0.2.1"), a("b." + zone + " 30 IN A 192.0.2.1")}, DefaultValidity, "different owners"},
		{"two types", []dns.RR{a("a." + zone + " 30 IN A 192.0.2.1"), a("a." + zone + " 30 IN AAAA ::1")}, DefaultValidity, "different owners, types"},
		{"two TTLs", []dns.RR{a("a." + zone + " 30 IN A 192.0.2.1"), a("a." + zone + " 60 IN A 192.0.2.2")}, DefaultValidity, "different TTLs"},
		{"outside", []dns.RR{a("domain.tld. 30 IN A 192.0.2.1")}, DefaultValidity, "not in zone"},
		{"RRSIG", []dns.RR{a(zone + " 30 IN RRSIG A 13 3 30 20260101000000 20250101000000 1 " + zone + " AAAA")}, DefaultValidity, "RRSIG RRsets are not signed"},
		{"no validity", []dns.RR{a(zone + " 30 IN A 192.0.2.1")}, 0, "out of range"},
		{"70 years", []dns.RR{a(zone + " 30 IN A 192.0.2.1")}, 70 * 365 * 24 * time.Hour, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigs, err := ks.Sign(tc.rrset, testNow, tc.validity)
			if err == nil || !strings.Contains(err.Error(), tc.want) || sigs != nil {
				t.Errorf("Sign = %v, %v; want no signatures and error %q", sigs, err, tc.want)
			}
		})
	}
}

func TestKeySetVerify(t *testing.T) {
	a, b := newKey(t, ECDSAP256SHA256), newKey(t, ECDSAP256SHA256)
	ks := newKeySet(t, []*Key{a, b}, nil)
	set := []dns.RR{mustRR(t, "www."+zone+" 30 IN A 192.0.2.20")}
	sigs, err := ks.Sign(set, testNow, DefaultValidity)
	if err != nil {
		t.Fatal(err)
	}
	tampered := *sigs[1]
	tampered.Signature = sigs[0].Signature
	for _, tc := range []struct {
		name string
		sigs []*dns.RRSIG
		now  time.Time
		want string // "" for success
	}{
		{"both", sigs, testNow, ""},
		{"reversed", []*dns.RRSIG{sigs[1], sigs[0]}, testNow, ""},
		{"one missing", sigs[:1], testNow, "no signature"},
		{"tampered", []*dns.RRSIG{sigs[0], &tampered}, testNow, "bad signature"},
		{"expired", sigs, testNow.Add(DefaultValidity + time.Second), "validity period"},
		{"before inception", sigs, testNow.Add(-Backdate - time.Second), "validity period"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ks.Verify(set, tc.sigs, tc.now)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Verify = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNewKeySet(t *testing.T) {
	a, b := newKey(t, ECDSAP256SHA256), newKey(t, ECDSAP256SHA256)
	ed := newKey(t, ED25519)
	other, err := Generate("other.tld.", ECDSAP256SHA256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		own, peer []*Key
		want      string
	}{
		{"no own key", nil, []*Key{peerOf(a)}, "no own key"},
		{"own without signer", []*Key{peerOf(a)}, nil, "own key without a private key"},
		{"peer with signer", []*Key{a}, []*Key{b}, "peer key with a private key"},
		{"other zone", []*Key{other}, nil, "not to zone"},
		{"own twice", []*Key{a, a}, nil, "same key as"},
		{"own as peer", []*Key{a}, []*Key{peerOf(a)}, "same key as"},
		{"peer twice", []*Key{a}, []*Key{peerOf(b), peerOf(b)}, "same key as"},
		{"peer algorithm", []*Key{a}, []*Key{peerOf(ed)}, "peer key algorithm ED25519 is not the algorithm of any own key (ECDSAP256SHA256)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := NewKeySet(zone, tc.own, tc.peer)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewKeySet = %v, %v; want error %q", ks, err, tc.want)
			}
		})
	}

	ks := newKeySet(t, []*Key{a, ed}, []*Key{peerOf(b)})
	got := ks.DNSKEYs(3600)
	want := []*Key{a, ed, b}
	if len(got) != len(want) {
		t.Fatalf("DNSKEYs has %d records, want %d", len(got), len(want))
	}
	for i, rr := range got {
		k := rr.(*dns.DNSKEY)
		if k.Hdr.Ttl != 3600 || k.Hdr.Name != zone || k.KeyTag() != want[i].Tag || k.PublicKey != want[i].DNSKEY.PublicKey {
			t.Errorf("DNSKEYs[%d] = %s, want %s with TTL 3600", i, k, want[i].DNSKEY)
		}
	}
	if got[0] == a.DNSKEY {
		t.Error("DNSKEYs returns the key's own record, want a copy")
	}
}
