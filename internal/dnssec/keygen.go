package dnssec

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Generate makes a new key of zone with algorithm alg (ECDSAP256SHA256 or
// ED25519; 0 means ECDSAP256SHA256) from crypto/rand. The key is a combined
// signing key: flags 257, so the Secure Entry Point bit marks it as the key
// the parent's DS points at (RFC 4034 section 2.1.1), and it signs every
// RRset. Its File is its base name, K<zone>+<alg>+<tag>, and its DNSKEY TTL
// is 0. Errors: an invalid zone or an unsupported algorithm.
func Generate(zone string, alg uint8) (*Key, error) {
	z, err := canonicalZone(zone)
	if err != nil {
		return nil, err
	}
	if alg == 0 {
		alg = ECDSAP256SHA256
	}
	if alg != ECDSAP256SHA256 && alg != ED25519 {
		return nil, fmt.Errorf("algorithm %d (%s) not supported: use 13 (ECDSAP256SHA256) or 15 (ED25519)", alg, algorithmName(alg))
	}
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: z, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
		Flags:     FlagsKSK,
		Protocol:  3,
		Algorithm: alg,
	}
	priv, err := k.Generate(256) // both algorithms have 256-bit keys
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", algorithmName(alg), err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("generate %s key: %T is not a crypto.Signer", algorithmName(alg), priv)
	}
	key := &Key{DNSKEY: k, Tag: k.KeyTag(), Algorithm: alg, Signer: privateSigner{s}}
	key.File = keyBaseName(z, alg, key.Tag)
	return key, nil
}

// bindTime is the format of the timing metadata in BIND 9 key files
// (YYYYMMDDHHMMSS, UTC).
const bindTime = "20060102150405"

// keyFiles returns the contents of the public and private key files of the
// own key k, as dnssec-keygen of BIND 9.18 writes them: the .key file with
// comment lines for the key's role and timing and the DNSKEY record without
// a TTL; the .private file in Private-key-format v1.3 with Created, Publish
// and Activate set to now. BIND reads a key without these lines, but its
// smart signing (dnssec-signzone -S, as with dnssec-keygen -C keys) then
// finds no key to sign with; with them it publishes and signs with the key.
func keyFiles(k *Key, now time.Time) (public, private []byte, err error) {
	ps, ok := k.Signer.(privateSigner)
	if !ok {
		return nil, nil, fmt.Errorf("key %s has no private key", k)
	}
	priv := k.DNSKEY.PrivateKeyString(ps.s)
	if priv == "" {
		return nil, nil, fmt.Errorf("key %s: cannot encode a %s private key", k.File, algorithmName(k.Algorithm))
	}
	t := now.UTC()
	stamp := t.Format(bindTime)
	long := stamp + " (" + t.Format(time.ANSIC) + ")"
	role := "zone-signing"
	if k.DNSKEY.Flags&dns.SEP != 0 {
		role = "key-signing"
	}
	var pub strings.Builder
	fmt.Fprintf(&pub, "; This is a %s key, keyid %d, for %s\n", role, k.Tag, k.DNSKEY.Hdr.Name)
	fmt.Fprintf(&pub, "; Created: %s\n; Publish: %s\n; Activate: %s\n", long, long, long)
	fmt.Fprintf(&pub, "%s IN DNSKEY %d %d %d %s\n", k.DNSKEY.Hdr.Name, k.DNSKEY.Flags, k.DNSKEY.Protocol, k.DNSKEY.Algorithm, k.DNSKEY.PublicKey)
	priv += "Created: " + stamp + "\nPublish: " + stamp + "\nActivate: " + stamp + "\n"
	return []byte(pub.String()), []byte(priv), nil
}

// WriteKeyFiles writes the own key k to dir as BIND 9.18's dnssec-keygen
// does: <base>.private with mode 0600 and <base>.key with mode 0644 (both
// less the process umask), where base is K<zone>+<alg>+<tag>, and returns
// base. It refuses to overwrite: if either file exists it returns an error
// that wraps fs.ErrExist and writes nothing. On any other failure it
// removes what it wrote. now is the time recorded as Created, Publish and
// Activate.
func WriteKeyFiles(dir string, k *Key, now time.Time) (string, error) {
	pub, priv, err := keyFiles(k, now)
	if err != nil {
		return "", err
	}
	base := keyBaseName(k.DNSKEY.Hdr.Name, k.Algorithm, k.Tag)
	path := filepath.Join(dir, base)
	for _, f := range []string{path + ".key", path + ".private"} {
		if _, err := os.Lstat(f); err == nil {
			return "", fmt.Errorf("write key %s: %w", f, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("write key %s: %w", f, err)
		}
	}
	if err := writeNew(path+".private", priv, 0o600); err != nil {
		return "", err
	}
	if err := writeNew(path+".key", pub, 0o644); err != nil {
		os.Remove(path + ".private")
		return "", err
	}
	return base, nil
}

// writeNew creates path, which must not exist, with mode perm and writes
// data to it, removing it again on failure.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return nil
}

// keygenAttempts bounds how many keys Keygen makes when the files of a new
// key exist already (a key tag collision, as dnssec-keygen retries too).
const keygenAttempts = 8

// Keygen makes a new key of zone with algorithm alg (see Generate) and
// writes it to dir (see WriteKeyFiles), recording now as its creation time.
// It returns the base name K<zone>+<alg>+<tag>, which is what the keygen
// command prints. When the files of the new key exist already it makes
// another key; it never overwrites a file.
func Keygen(dir, zone string, alg uint8, now time.Time) (string, error) {
	for i := 0; ; i++ {
		k, err := Generate(zone, alg)
		if err != nil {
			return "", err
		}
		base, err := WriteKeyFiles(dir, k, now)
		if errors.Is(err, fs.ErrExist) && i+1 < keygenAttempts {
			continue
		}
		return base, err
	}
}
