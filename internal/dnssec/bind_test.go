package dnssec

// Tests against real validators and BIND's key tools: dnssec-keygen,
// dnssec-dsfromkey, dnssec-signzone and dnssec-verify (Debian package
// bind9-utils) and kzonecheck (knot-dnssecutils). CI installs both; a
// missing tool fails the test.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// tool returns the path of a validator or key tool, failing the test when
// it is not installed.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		pkg := "bind9-utils"
		if name == "kzonecheck" {
			pkg = "knot-dnssecutils"
		}
		t.Fatalf("%s not found (%v): install the Debian package %s", name, err, pkg)
	}
	return path
}

// run runs a tool and returns its standard output; err is non-nil when it
// exits with a non-zero status, and out then holds stdout and stderr.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}

// dnssecVerify runs dnssec-verify -z on the zone file path. -z ignores the
// KSK flag: without it dnssec-verify wants every RRset but the DNSKEY RRset
// signed by a key without the SEP bit, which a zone signed by combined
// signing keys (flags 257, as Generate makes them) has not.
func dnssecVerify(t *testing.T, path string) (string, error) {
	return run(t, "dnssec-verify", "-z", "-o", zone, path)
}

// kzonecheck runs Knot's zone checker with DNSSEC checks at time now.
func kzonecheck(t *testing.T, path string, now time.Time) (string, error) {
	return run(t, "kzonecheck", "-o", zone, "-d", "on", "-t", strconv.FormatInt(now.Unix(), 10), path)
}

// bindKeygen makes a key with BIND's dnssec-keygen in dir and returns its
// base name.
func bindKeygen(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := run(t, "dnssec-keygen", append(append([]string{"-q", "-K", dir}, args...), zone)...)
	if err != nil {
		t.Fatalf("dnssec-keygen %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(out)
}

// bindDS returns the SHA-256 DS record that dnssec-dsfromkey computes from
// the .key file of base.
func bindDS(t *testing.T, base string) *dns.DS {
	t.Helper()
	out, err := run(t, "dnssec-dsfromkey", "-2", base+".key")
	if err != nil {
		t.Fatalf("dnssec-dsfromkey: %v\n%s", err, out)
	}
	rr, err := dns.NewRR(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("parse %q: %v", out, err)
	}
	return rr.(*dns.DS)
}

// sameDS compares two DS records' data (not TTL).
func sameDS(a, b *dns.DS) bool {
	return dns.CanonicalName(a.Hdr.Name) == dns.CanonicalName(b.Hdr.Name) && a.KeyTag == b.KeyTag &&
		a.Algorithm == b.Algorithm && a.DigestType == b.DigestType && strings.EqualFold(a.Digest, b.Digest)
}

// TestBINDKeysLoad: keys made by BIND's dnssec-keygen load, have BIND's DS,
// and sign a zone that dnssec-verify accepts, which it can only do if the
// private key was read right.
func TestBINDKeysLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ECDSAP256SHA256 ZSK", []string{"-a", "ECDSAP256SHA256"}},
		{"ECDSAP256SHA256 KSK", []string{"-a", "ECDSAP256SHA256", "-f", "KSK"}},
		{"ED25519 ZSK", []string{"-a", "ED25519"}},
		{"ED25519 KSK with TTL", []string{"-a", "ED25519", "-f", "KSK", "-L", "3600"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, bindKeygen(t, dir, tc.args...))
			k, err := LoadKeyPair(zone, base, osRead)
			if err != nil {
				t.Fatalf("LoadKeyPair of a dnssec-keygen key: %v", err)
			}
			if !sameDS(k.DS(), bindDS(t, base)) {
				t.Errorf("DS = %s, dnssec-dsfromkey says %s", k.DS(), bindDS(t, base))
			}
			ks := newKeySet(t, []*Key{k}, nil)
			path := writeZone(t, smallZone(t, ks).sign(t, ks, time.Now(), DefaultValidity))
			if out, err := dnssecVerify(t, path); err != nil {
				t.Errorf("dnssec-verify of a zone signed with a dnssec-keygen key: %v\n%s", err, out)
			}
		})
	}
}

// TestBINDReadsOurKeys: keys written by Keygen give dnssec-dsfromkey's DS,
// and dnssec-signzone signs with them (reading our .private file) so that
// the public key in our .key file verifies its signatures.
func TestBINDReadsOurKeys(t *testing.T) {
	for _, alg := range []uint8{ECDSAP256SHA256, ED25519} {
		t.Run(algorithmName(alg), func(t *testing.T) {
			dir := t.TempDir()
			b, err := Keygen(dir, zone, alg, time.Now().Add(-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(dir, b)
			k, err := LoadKeyPair(zone, base, osRead)
			if err != nil {
				t.Fatal(err)
			}
			if !sameDS(k.DS(), bindDS(t, base)) {
				t.Errorf("DS = %s, dnssec-dsfromkey says %s", k.DS(), bindDS(t, base))
			}

			unsigned := filepath.Join(dir, "pool.zone")
			var text strings.Builder
			for _, set := range smallZone(t, nil).rrsets {
				for _, rr := range set {
					text.WriteString(rr.String() + "\n")
				}
			}
			if err := os.WriteFile(unsigned, []byte(text.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			signed := filepath.Join(dir, "pool.zone.signed")
			// -S: smart signing, which takes the keys of -K and their
			// Publish and Activate times from our .private file.
			if out, err := run(t, "dnssec-signzone", "-S", "-K", dir, "-d", dir, "-z", "-o", zone, "-f", signed, unsigned); err != nil {
				t.Fatalf("dnssec-signzone with our key: %v\n%s", err, out)
			}
			checkBINDSignatures(t, k, signed)
		})
	}
}

// checkBINDSignatures verifies every RRSIG of the signed zone file path
// with k's public key.
func checkBINDSignatures(t *testing.T, k *Key, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type key struct {
		name  string
		rtype uint16
	}
	sets := map[key][]dns.RR{}
	var sigs []*dns.RRSIG
	zp := dns.NewZoneParser(f, zone, path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if sig, ok := rr.(*dns.RRSIG); ok {
			sigs = append(sigs, sig)
			continue
		}
		h := rr.Header()
		sets[key{h.Name, h.Rrtype}] = append(sets[key{h.Name, h.Rrtype}], rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	if len(sigs) < len(sets) {
		t.Fatalf("%d RRSIGs for %d RRsets", len(sigs), len(sets))
	}
	for _, sig := range sigs {
		set := sets[key{sig.Hdr.Name, sig.TypeCovered}]
		if err := sig.Verify(k.DNSKEY, set); err != nil {
			t.Errorf("BIND's RRSIG %s does not verify with our public key: %v", sig, err)
		}
	}
}

// TestValidators signs complete zones with this package and has
// dnssec-verify (and, where its signing policy allows, kzonecheck) check
// them: every RRset signed by every algorithm, the NSEC chain complete and
// in canonical order with the right type bitmaps.
func TestValidators(t *testing.T) {
	ecA, ecB, ecC, ecD := newKey(t, ECDSAP256SHA256), newKey(t, ECDSAP256SHA256), newKey(t, ECDSAP256SHA256), newKey(t, ECDSAP256SHA256)
	edA, edB := newKey(t, ED25519), newKey(t, ED25519)
	for _, tc := range []struct {
		name      string
		own, peer []*Key
		// knot: kzonecheck checks the zone too. It applies Knot's own
		// key-role policy rather than a validator's rule: it refuses a
		// DNSKEY RRset with a key that signs nothing (a peer key), and
		// also two combined signing keys that both sign every RRset.
		knot bool
	}{
		{"one ECDSAP256SHA256 key", []*Key{ecA}, nil, true},
		{"one ED25519 key", []*Key{edA}, nil, true},
		{"rollover: two ECDSAP256SHA256 keys", []*Key{ecA, ecB}, nil, false},
		{"algorithm rollover: ECDSAP256SHA256 and ED25519", []*Key{ecA, edA}, nil, false},
		{"multi-signer: own ECDSAP256SHA256 and a peer's", []*Key{ecA}, []*Key{peerOf(ecB)}, false},
		{"multi-signer: own and three peers", []*Key{ecA}, []*Key{peerOf(ecB), peerOf(ecC), peerOf(ecD)}, false},
		{"multi-signer: own ED25519 and a peer's", []*Key{edA}, []*Key{peerOf(edB)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := newKeySet(t, tc.own, tc.peer)
			now := time.Now()
			s := smallZone(t, ks).sign(t, ks, now, DefaultValidity)
			path := writeZone(t, s)
			if out, err := dnssecVerify(t, path); err != nil {
				t.Errorf("dnssec-verify: %v\n%s", err, out)
			}
			if tc.knot {
				if out, err := kzonecheck(t, path, now); err != nil {
					t.Errorf("kzonecheck: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestValidatorsRefuse shows that the validators in TestValidators do check:
// each broken zone fails.
func TestValidatorsRefuse(t *testing.T) {
	k := newKey(t, ECDSAP256SHA256)
	ks := newKeySet(t, []*Key{k}, nil)
	now := time.Now()
	good := smallZone(t, ks).sign(t, ks, now, DefaultValidity)
	for _, tc := range []struct {
		name  string
		zone  func() signedZone
		knot  bool
		check time.Time // kzonecheck's clock
	}{
		{"an RRSIG missing", func() signedZone {
			s := good
			s.sigs = append([][]*dns.RRSIG{nil}, good.sigs[1:]...)
			return s
		}, true, now},
		{"an NSEC missing", func() signedZone {
			s := good
			s.rrsets, s.sigs = good.rrsets[:len(good.rrsets)-1], good.sigs[:len(good.sigs)-1]
			return s
		}, true, now},
		{"an address changed after signing", func() signedZone {
			s := good
			s.rrsets = append([][]dns.RR(nil), good.rrsets...)
			for i, set := range s.rrsets {
				if set[0].Header().Rrtype == dns.TypeA {
					s.rrsets[i] = []dns.RR{mustRR(t, set[0].Header().Name+" 30 IN A 203.0.113.1")}
					break
				}
			}
			return s
		}, true, now},
		{"signatures expired", func() signedZone {
			return smallZone(t, ks).sign(t, ks, now.Add(-30*24*time.Hour), DefaultValidity)
		}, true, now},
		{"signatures not yet valid", func() signedZone {
			return smallZone(t, ks).sign(t, ks, now.Add(2*Backdate), DefaultValidity)
		}, true, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeZone(t, tc.zone())
			if out, err := dnssecVerify(t, path); err == nil {
				t.Errorf("dnssec-verify accepts the zone:\n%s", out)
			}
			if tc.knot {
				if out, err := kzonecheck(t, path, tc.check); err == nil {
					t.Errorf("kzonecheck accepts the zone:\n%s", out)
				}
			}
		})
	}
	// And the good zone passes, also at kzonecheck's clock moved to just
	// before expiration, but not just after.
	path := writeZone(t, good)
	if out, err := dnssecVerify(t, path); err != nil {
		t.Errorf("dnssec-verify: %v\n%s", err, out)
	}
	exp := now.Add(DefaultValidity)
	if out, err := kzonecheck(t, path, exp.Add(-time.Minute)); err != nil {
		t.Errorf("kzonecheck before expiration: %v\n%s", err, out)
	}
	if out, err := kzonecheck(t, path, exp.Add(time.Minute)); err == nil {
		t.Errorf("kzonecheck after expiration accepts the zone:\n%s", out)
	}
}
