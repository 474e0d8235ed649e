package dnssec

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestKeygen(t *testing.T) {
	for _, tc := range []struct {
		alg     uint8
		wantAlg uint8
		name    string
	}{
		{0, ECDSAP256SHA256, "default"},
		{ECDSAP256SHA256, ECDSAP256SHA256, "ECDSAP256SHA256"},
		{ED25519, ED25519, "ED25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base, err := Keygen(dir, "Pool.Domain.TLD", tc.alg, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^Kpool\.domain\.tld\.\+0(13|15)\+\d{5}$`).MatchString(base) {
				t.Errorf("base name %q is not K<zone>+<alg>+<tag>", base)
			}
			path := filepath.Join(dir, base)
			k, err := LoadKeyPair(zone, path, osRead)
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm != tc.wantAlg || k.DNSKEY.Flags != FlagsKSK {
				t.Errorf("key %v flags %d, want algorithm %d flags 257", k, k.DNSKEY.Flags, tc.wantAlg)
			}
			for ext, perm := range map[string]fs.FileMode{".key": 0o644, ".private": 0o600} {
				fi, err := os.Stat(path + ext)
				if err != nil {
					t.Fatal(err)
				}
				// The umask may clear bits, never add them.
				if got := fi.Mode().Perm(); got&^perm != 0 || got&0o600 != 0o600 {
					t.Errorf("%s mode %04o, want %04o less the umask", ext, got, perm)
				}
			}
			pub, _ := os.ReadFile(path + ".key")
			priv, _ := os.ReadFile(path + ".private")
			for _, want := range []string{"; This is a key-signing key, keyid ", "; Created: 20260301120000 (Sun Mar  1 12:00:00 2026)\n", "; Activate: 20260301120000"} {
				if !strings.Contains(string(pub), want) {
					t.Errorf(".key file lacks %q:\n%s", want, pub)
				}
			}
			for _, want := range []string{"Private-key-format: v1.3\n", "Algorithm: 1", "Created: 20260301120000\n", "Publish: 20260301120000\n", "Activate: 20260301120000\n"} {
				if !bytes.Contains(priv, []byte(want)) {
					t.Errorf(".private file lacks %q", want)
				}
			}
		})
	}
}

func TestWriteKeyFilesRefusesToOverwrite(t *testing.T) {
	k := newKey(t, ECDSAP256SHA256)
	for _, remove := range []string{"", ".key", ".private"} {
		t.Run("removed "+remove, func(t *testing.T) {
			dir := t.TempDir()
			base, err := WriteKeyFiles(dir, k, testNow)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, base)
			if remove != "" {
				if err := os.Remove(path + remove); err != nil {
					t.Fatal(err)
				}
			}
			kept := map[string][]byte{}
			for _, ext := range []string{".key", ".private"} {
				kept[ext], _ = os.ReadFile(path + ext)
			}
			if _, err := WriteKeyFiles(dir, k, testNow.Add(time.Hour)); !errors.Is(err, fs.ErrExist) {
				t.Errorf("WriteKeyFiles over existing files: %v, want fs.ErrExist", err)
			}
			for ext, before := range kept {
				after, err := os.ReadFile(path + ext)
				if before == nil && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s was written (%v)", ext, err)
				}
				if before != nil && !bytes.Equal(before, after) {
					t.Errorf("%s was overwritten", ext)
				}
			}
		})
	}
	if _, err := WriteKeyFiles(filepath.Join(t.TempDir(), "missing"), k, testNow); err == nil {
		t.Error("WriteKeyFiles into a missing directory succeeded")
	}
	if _, err := WriteKeyFiles(t.TempDir(), peerOf(k), testNow); err == nil {
		t.Error("WriteKeyFiles of a peer key succeeded")
	}
}

func TestGenerateErrors(t *testing.T) {
	if _, err := Generate(zone, 8); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("Generate(RSASHA256) = %v, want not supported", err)
	}
	if _, err := Generate("bad..zone", 13); err == nil {
		t.Error("Generate with a bad zone succeeded")
	}
}
