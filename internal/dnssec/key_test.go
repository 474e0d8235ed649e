package dnssec

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParseAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint8
		err  bool
	}{
		{"ecdsap256sha256", ECDSAP256SHA256, false},
		{"ECDSAP256SHA256", ECDSAP256SHA256, false},
		{"13", ECDSAP256SHA256, false},
		{"ed25519", ED25519, false},
		{"ED25519", ED25519, false},
		{"15", ED25519, false},
		{"rsasha256", 0, true},
		{"14", 0, true},
		{"", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseAlgorithm(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("ParseAlgorithm(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

// privateKeyText returns the secret of k's private key file: the value of
// its PrivateKey line.
func privateKeyText(t *testing.T, k *Key) string {
	t.Helper()
	_, priv, err := keyFiles(k, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(priv), "\n") {
		if v, ok := strings.CutPrefix(line, "PrivateKey: "); ok {
			return v
		}
	}
	t.Fatalf("no PrivateKey line in %q", priv)
	return ""
}

func TestParseKeyPairRoundTrip(t *testing.T) {
	for _, alg := range []uint8{ECDSAP256SHA256, ED25519} {
		t.Run(algorithmName(alg), func(t *testing.T) {
			k := newKey(t, alg)
			pub, priv, err := keyFiles(k, testNow)
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join("keys", k.File)
			got, err := ParseKeyPair("POOL.Domain.TLD", base, pub, priv)
			if err != nil {
				t.Fatalf("ParseKeyPair: %v", err)
			}
			if got.DNSKEY.String() != k.DNSKEY.String() || got.Tag != k.Tag || got.Algorithm != alg || got.File != base {
				t.Errorf("got %v %s, want %v %s", got, got.DNSKEY, k, k.DNSKEY)
			}
			if !got.Own() {
				t.Fatal("parsed key pair has no Signer")
			}
			ks := newKeySet(t, []*Key{got}, nil)
			rrset := []dns.RR{mustRR(t, "api."+zone+" 30 IN A 192.0.2.1")}
			sigs, err := ks.Sign(rrset, testNow, DefaultValidity)
			if err != nil {
				t.Fatal(err)
			}
			// The original key's public half verifies the parsed key's signature.
			if err := sigs[0].Verify(k.DNSKEY, rrset); err != nil {
				t.Errorf("signature by parsed key does not verify: %v", err)
			}
			peer, err := ParsePublicKey(zone, base, pub)
			if err != nil || peer.Own() || peer.Tag != k.Tag {
				t.Errorf("ParsePublicKey = %v, %v; want peer key with tag %d", peer, err, k.Tag)
			}
		})
	}
}

func TestParseKeyErrors(t *testing.T) {
	k := newKey(t, ECDSAP256SHA256)
	other := newKey(t, ECDSAP256SHA256)
	ed := newKey(t, ED25519)
	pub, priv, _ := keyFiles(k, testNow)
	_, otherPriv, _ := keyFiles(other, testNow)
	_, edPriv, _ := keyFiles(ed, testNow)
	secret := privateKeyText(t, k)
	rec := func(owner string, flags, proto, alg int, key string) string {
		return fmt.Sprintf("%s IN DNSKEY %d %d %d %s\n", owner, flags, proto, alg, key)
	}
	// keyed returns the base name that matches a record's key tag.
	keyed := func(s string) string {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		d := rr.(*dns.DNSKEY)
		return keyBaseName(zone, d.Algorithm, d.KeyTag())
	}
	pk := k.DNSKEY.PublicKey
	notOnCurve := base64.StdEncoding.EncodeToString(make([]byte, 64))
	for _, tc := range []struct {
		name      string
		base      string // "" means k.File
		pub, priv string // "" means k's
		want      string
	}{
		{name: "other zone", pub: rec("other.tld.", 257, 3, 13, pk), want: "not to zone pool.domain.tld."},
		{name: "parent zone", pub: rec("domain.tld.", 257, 3, 13, pk), want: "not to zone"},
		{name: "revoked", pub: rec(zone, 385, 3, 13, pk), want: "flags 385"},
		{name: "not a zone key", pub: rec(zone, 0, 3, 13, pk), want: "flags 0"},
		{name: "protocol", pub: rec(zone, 257, 2, 13, pk), want: "protocol 2"},
		{name: "RSA", pub: rec(zone, 257, 3, 8, pk), want: "algorithm 8 (RSASHA256) not supported"},
		{name: "P-384", pub: rec(zone, 257, 3, 14, pk), want: "algorithm 14 (ECDSAP384SHA384) not supported"},
		{name: "short key", pub: rec(zone, 257, 3, 13, "AAAA"), want: "has 3 octets, want 64"},
		{name: "not on curve", base: keyed(rec(zone, 257, 3, 13, notOnCurve)), pub: rec(zone, 257, 3, 13, notOnCurve), want: "not a point on P-256"},
		{name: "two records", pub: string(pub) + string(pub), want: "found 2 records"},
		{name: "no record", pub: "; nothing\n", want: "found 0 records"},
		{name: "KEY not DNSKEY", pub: zone + " IN KEY 257 3 13 " + pk + "\n", want: "found KEY"},
		{name: "syntax", pub: zone + " IN DNSKEY 257 3\n", want: "dns:"},
		{name: "file name tag", base: keyBaseName(zone, 13, k.Tag+1), want: "file name does not match the key: want " + k.File + ".key"},
		{name: "file name zone", base: "Kother.tld.+013+" + fmt.Sprintf("%05d", k.Tag), want: "file name does not match"},
		{name: "file name alg", base: keyBaseName(zone, 15, k.Tag), want: "file name does not match"},
		{name: "other private key", priv: string(otherPriv), want: "private key does not match the public key"},
		{name: "private algorithm", priv: string(edPriv), want: "private key algorithm 15 does not match the DNSKEY's algorithm 13"},
		{name: "no format line", priv: strings.Replace(string(priv), "Private-key-format: v1.3\n", "", 1), want: "Private-key-format"},
		{name: "no algorithm line", priv: strings.Replace(string(priv), "Algorithm: 13 (ECDSAP256SHA256)\n", "", 1), want: "Algorithm: line"},
		{name: "no private key line", priv: strings.Replace(string(priv), "PrivateKey: "+secret+"\n", "", 1), want: "not a valid P-256 scalar"},
		{name: "garbled private key", priv: strings.Replace(string(priv), "PrivateKey: "+secret, "PrivateKey: !"+secret, 1), want: "malformed private key file"},
		{name: "value without key", priv: string(priv) + secret + "\n", want: "malformed private key file"},
		{name: "zero scalar", priv: strings.Replace(string(priv), secret, base64.StdEncoding.EncodeToString(make([]byte, 32)), 1), want: "not a valid P-256 scalar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := k.File
			if tc.base != "" {
				base = tc.base
			}
			p, s := string(pub), string(priv)
			if tc.pub != "" {
				p = tc.pub
			}
			if tc.priv != "" {
				s = tc.priv
			}
			got, err := ParseKeyPair(zone, base, []byte(p), []byte(s))
			if err == nil {
				t.Fatalf("ParseKeyPair = %v, want error %q", got, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			if !strings.HasPrefix(msg, base+".key: ") && !strings.HasPrefix(msg, base+".private: ") {
				t.Errorf("error %q does not start with the file name %s.key or .private", msg, base)
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, secret[1:20]) {
				t.Errorf("error %q shows the private key", msg)
			}
		})
	}
}

func TestKeyNeverFormatsPrivateKey(t *testing.T) {
	for _, alg := range []uint8{ECDSAP256SHA256, ED25519} {
		t.Run(algorithmName(alg), func(t *testing.T) {
			k := newKey(t, alg)
			secret := privateKeyText(t, k)
			raw, _ := base64.StdEncoding.DecodeString(secret)
			var secrets []string
			secrets = append(secrets, secret, fmt.Sprintf("%x", raw), fmt.Sprintf("%v", raw[:8]))
			switch p := k.Signer.(privateSigner).s.(type) {
			case *ecdsa.PrivateKey:
				secrets = append(secrets, p.D.String())
			case ed25519.PrivateKey:
				secrets = append(secrets, fmt.Sprintf("%v", []byte(p)[:8]))
			}
			js, err := json.Marshal(k)
			if err != nil {
				t.Fatal(err)
			}
			outs := []string{
				fmt.Sprint(k), fmt.Sprint(*k), fmt.Sprintf("%+v", k), fmt.Sprintf("%+v", *k),
				fmt.Sprintf("%#v", k), fmt.Sprintf("%#v", *k), fmt.Sprintf("%v", k.Signer),
				fmt.Sprintf("%+v", k.Signer), fmt.Sprintf("%#v", k.Signer), fmt.Sprintf("%x", k.Signer),
				fmt.Sprintf("%s", k.Signer), string(js), fmt.Errorf("wrap: %v", k).Error(),
			}
			for _, out := range outs {
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("formatted key %q contains private material %q", out, s)
					}
				}
			}
			if !strings.Contains(fmt.Sprint(k), k.File) || !strings.Contains(fmt.Sprint(k), "own key") {
				t.Errorf("String() = %q, want the file name and role", k)
			}
		})
	}
}

func TestCheckPrivateMode(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o600, true}, {0o400, true}, {0o700, true}, {0o620, true},
		{0o640, false}, {0o644, false}, {0o604, false}, {0o660, false}, {0o666, false},
	} {
		t.Run(fmt.Sprintf("%04o", tc.mode), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("k%04o", tc.mode))
			if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckPrivateMode(path, fi)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckPrivateMode(%04o) = %v, want ok %v", tc.mode, err, tc.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	base, err := Keygen(dir, zone, ED25519, testNow)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, base)
	for _, name := range []string{path, path + ".key", path + ".private"} {
		k, err := LoadKeyPair(zone, name, osRead)
		if err != nil || !k.Own() || k.File != path {
			t.Errorf("LoadKeyPair(%s) = %v, %v; want own key from %s", name, k, err, path)
		}
		p, err := LoadPublicKey(zone, name, osRead)
		if err != nil || p.Own() || p.File != path {
			t.Errorf("LoadPublicKey(%s) = %v, %v; want peer key from %s", name, p, err, path)
		}
	}

	t.Run("private key readable by others", func(t *testing.T) {
		if err := os.Chmod(path+".private", 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(path+".private", 0o600)
		_, err := LoadKeyPair(zone, path, osRead)
		if err == nil || !strings.Contains(err.Error(), path+".private: mode 0644") {
			t.Errorf("LoadKeyPair of a 0644 private key: %v, want refused naming the file and mode", err)
		}
		// A peer key only needs the public file.
		if _, err := LoadPublicKey(zone, path, osRead); err != nil {
			t.Errorf("LoadPublicKey: %v", err)
		}
	})
	t.Run("missing files", func(t *testing.T) {
		missing := filepath.Join(dir, keyBaseName(zone, 13, 1))
		for _, load := range []func(string, string, ReadFunc) (*Key, error){LoadKeyPair, LoadPublicKey} {
			_, err := load(zone, missing, osRead)
			if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "read key "+missing+".key") {
				t.Errorf("load missing key: %v, want ErrNotExist naming %s.key", err, missing)
			}
		}
		if err := os.Rename(path+".private", path+".hidden"); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(path+".hidden", path+".private")
		_, err := LoadKeyPair(zone, path, osRead)
		if err == nil || !strings.Contains(err.Error(), "read key "+path+".private") {
			t.Errorf("LoadKeyPair without .private: %v, want an error naming it", err)
		}
	})
	t.Run("reader error", func(t *testing.T) {
		boom := errors.New("owned by uid 1234")
		_, err := LoadKeyPair(zone, path, func(p string, private bool) ([]byte, error) {
			if private {
				return nil, boom
			}
			return os.ReadFile(p)
		})
		if !errors.Is(err, boom) {
			t.Errorf("LoadKeyPair = %v, want the reader's error wrapped", err)
		}
	})
}

func TestKeyBase(t *testing.T) {
	for in, want := range map[string]string{
		"d/Kz.+013+00001":         "d/Kz.+013+00001",
		"d/Kz.+013+00001.key":     "d/Kz.+013+00001",
		"d/Kz.+013+00001.private": "d/Kz.+013+00001",
		"Kz.+013+00001.keys":      "Kz.+013+00001.keys",
	} {
		if got := KeyBase(in); got != want {
			t.Errorf("KeyBase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDS(t *testing.T) {
	// A key written by BIND 9.18's dnssec-keygen and its DS from
	// dnssec-dsfromkey -2.
	pub := []byte("; This is a zone-signing key, keyid 3730, for pool.domain.tld.\n" +
		"pool.domain.tld. IN DNSKEY 256 3 13 7gP9GIzP0j3sMjnSbOE4Lmfi9+a/tCtSPzSVStS8rI3Wvix9Y2rkwunl zJuVJ6ewtbgbeFOwSwyozxaFolxESg==\n")
	k, err := ParsePublicKey(zone, "Kpool.domain.tld.+013+03730", pub)
	if err != nil {
		t.Fatal(err)
	}
	ds := k.DS()
	want := "pool.domain.tld. IN DS 3730 13 2 " // digest checked against BIND in TestBINDDS
	if got := fmt.Sprintf("%s IN DS %d %d %d ", ds.Hdr.Name, ds.KeyTag, ds.Algorithm, ds.DigestType); got != want || len(ds.Digest) != 64 {
		t.Errorf("DS = %s, want %s<64 hex digits>", ds, want)
	}
}
