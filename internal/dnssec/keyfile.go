package dnssec

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// ReadFunc reads the whole file at path. private is true for a .private
// file: the caller's reader then applies CheckPrivateMode (with the file's
// other ownership checks) to the descriptor it read from, so that the file
// checked is the file read. The error should name path.
type ReadFunc func(path string, private bool) ([]byte, error)

// KeyBase returns path without a final ".key" or ".private", so that a
// key may be named by either of its files or by its base name.
func KeyBase(path string) string {
	for _, ext := range []string{".key", ".private"} {
		if strings.HasSuffix(path, ext) {
			return strings.TrimSuffix(path, ext)
		}
	}
	return path
}

// CheckPrivateMode refuses a .private file that group or others may read
// (any of the mode bits 0044): a private key file must be readable by its
// owner only, as dnssec-keygen writes it (0600). path is only used in the
// error. The other rules on the file (regular file, owner, not writable by
// group or others) are the caller's, shared with the configuration file.
func CheckPrivateMode(path string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return fmt.Errorf("%s: mode %04o lets group or others read the private key; run chmod go-rwx %s", path, perm, path)
	}
	return nil
}

// LoadKeyPair reads an own key of zone with read: path is the base name of
// its files or either file, and read is called for path's .key file, then
// its .private file. The Key is as ParseKeyPair returns it; read's error is
// returned wrapped, and every error names the file it is about.
func LoadKeyPair(zone, path string, read ReadFunc) (*Key, error) {
	base := KeyBase(path)
	pub, err := read(base+".key", false)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", base+".key", err)
	}
	priv, err := read(base+".private", true)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", base+".private", err)
	}
	return ParseKeyPair(zone, base, pub, priv)
}

// LoadPublicKey reads a peer key of zone with read: path is the base name
// of its files or its .key file, and only the .key file is read. The Key is
// as ParsePublicKey returns it; every error names the file.
func LoadPublicKey(zone, path string, read ReadFunc) (*Key, error) {
	base := KeyBase(path)
	pub, err := read(base+".key", false)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", base+".key", err)
	}
	return ParsePublicKey(zone, base, pub)
}

// ParsePublicKey parses the contents of a BIND public key file (base+".key":
// comment lines and one DNSKEY record in master-file format) as a peer key
// of zone, with a nil Signer. It checks that:
//
//   - the file holds exactly one record, a DNSKEY of class IN;
//   - its owner is zone, compared case-insensitively (RFC 4034 section 2);
//   - its flags are 256 or 257 and its protocol 3 (RFC 4034 section 2.1);
//   - its algorithm is 13 or 15 and its key a valid key of that algorithm;
//   - base's last element is K<zone>+<alg>+<tag> with the computed key tag.
//
// Every error starts with base+".key".
func ParsePublicKey(zone, base string, data []byte) (*Key, error) {
	file := base + ".key"
	z, err := canonicalZone(zone)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	k, err := parseDNSKEY(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	key, err := checkZoneKey(z, k)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	key.File = base
	if want := keyBaseName(z, key.Algorithm, key.Tag); !strings.EqualFold(filepath.Base(base), want) {
		return nil, fmt.Errorf("%s: file name does not match the key: want %s.key for this key", file, want)
	}
	return key, nil
}

// ParseKeyPair parses an own key of zone from the contents of its BIND
// public key file (base+".key", checked as by ParsePublicKey) and private
// key file (base+".private", "Private-key-format: v1.2" or "v1.3" as
// dnssec-keygen writes it). The private file's algorithm must be the
// DNSKEY's and its private key must be the one whose public key is in the
// DNSKEY. Timing lines (Created, Publish, Activate, ...) are ignored: every
// own key signs. Errors name the file they are about and never quote the
// private file's contents.
func ParseKeyPair(zone, base string, public, private []byte) (*Key, error) {
	key, err := ParsePublicKey(zone, base, public)
	if err != nil {
		return nil, err
	}
	file := base + ".private"
	s, err := parsePrivateKey(key.DNSKEY, private)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	key.Signer = privateSigner{s}
	return key, nil
}

// canonicalZone returns zone as a lower-case FQDN, or an error when it is
// not a domain name.
func canonicalZone(zone string) (string, error) {
	if _, ok := dns.IsDomainName(zone); !ok || zone == "" {
		return "", fmt.Errorf("zone %q is not a domain name", zone)
	}
	return dns.CanonicalName(zone), nil
}

// parseDNSKEY returns the single DNSKEY record of a public key file.
func parseDNSKEY(data []byte) (*dns.DNSKEY, error) {
	zp := dns.NewZoneParser(bytes.NewReader(data), ".", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	if len(rrs) != 1 {
		return nil, fmt.Errorf("want one DNSKEY record, found %d records", len(rrs))
	}
	k, ok := rrs[0].(*dns.DNSKEY)
	if !ok {
		return nil, fmt.Errorf("want a DNSKEY record, found %s", dns.TypeToString[rrs[0].Header().Rrtype])
	}
	return k, nil
}

// checkZoneKey checks that k is a zone key of zone (a lower-case FQDN) with
// a supported algorithm and returns it as a peer Key without File.
func checkZoneKey(zone string, k *dns.DNSKEY) (*Key, error) {
	if k.Hdr.Class != dns.ClassINET {
		return nil, fmt.Errorf("DNSKEY class %s, want IN", dns.ClassToString[k.Hdr.Class])
	}
	if owner := dns.CanonicalName(k.Hdr.Name); owner != zone {
		return nil, fmt.Errorf("key belongs to %s, not to zone %s", k.Hdr.Name, zone)
	}
	if k.Flags != FlagsZSK && k.Flags != FlagsKSK {
		return nil, fmt.Errorf("DNSKEY flags %d: want 256 (zone key) or 257 (zone key, secure entry point)", k.Flags)
	}
	if k.Protocol != 3 {
		return nil, fmt.Errorf("DNSKEY protocol %d, want 3", k.Protocol)
	}
	raw, err := checkPublicKey(k)
	if err != nil {
		return nil, err
	}
	c := *k
	c.Hdr.Name = zone
	c.Hdr.Rrtype = dns.TypeDNSKEY
	c.PublicKey = b64(raw) // BIND splits long keys with spaces
	return &Key{DNSKEY: &c, Tag: c.KeyTag(), Algorithm: c.Algorithm}, nil
}

// errPrivate is the error for a private key file that miekg/dns cannot
// read. Its own errors are not passed on: they may quote a line of the file.
var errPrivate = errors.New("malformed private key file")

// parsePrivateKey reads the private key file data of the key k and checks
// that the private key is k's.
func parsePrivateKey(k *dns.DNSKEY, data []byte) (crypto.Signer, error) {
	alg, err := privateAlgorithm(data)
	if err != nil {
		return nil, err
	}
	if alg != k.Algorithm {
		return nil, fmt.Errorf("private key algorithm %d does not match the DNSKEY's algorithm %d", alg, k.Algorithm)
	}
	priv, err := k.ReadPrivateKey(bytes.NewReader(data), "")
	if err != nil {
		return nil, errPrivate
	}
	want, _ := checkPublicKey(k) // checked by the caller
	var s crypto.Signer
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		// ReadPrivateKey copies the public key from the DNSKEY; derive it
		// from the scalar instead, which also rejects 0 and values past
		// the group order.
		if p.D == nil || p.D.BitLen() > 256 {
			return nil, errors.New("ECDSAP256SHA256 private key is not 32 octets")
		}
		d, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), p.D.FillBytes(make([]byte, 32)))
		if err != nil {
			return nil, errors.New("ECDSAP256SHA256 private key is not a valid P-256 scalar (missing PrivateKey line?)")
		}
		s = d
	case ed25519.PrivateKey:
		if len(p) != ed25519.PrivateKeySize {
			return nil, errors.New("ED25519 private key missing (no PrivateKey line?)")
		}
		s = p
	default:
		return nil, errPrivate
	}
	got, err := publicKeyBytes(s.Public())
	if err != nil || !bytes.Equal(got, want) {
		return nil, errors.New("private key does not match the public key in the .key file")
	}
	return s, nil
}

// privateAlgorithm returns the algorithm number of the "Algorithm:" line of
// a private key file, after checking its "Private-key-format:" line.
func privateAlgorithm(data []byte) (uint8, error) {
	var format, alg string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "private-key-format":
			format = strings.TrimSpace(value)
		case "algorithm":
			alg, _, _ = strings.Cut(strings.TrimSpace(value), " ")
		}
	}
	if err := sc.Err(); err != nil {
		return 0, errPrivate
	}
	if format != "v1.2" && format != "v1.3" {
		return 0, fmt.Errorf("%w: want a Private-key-format: v1.2 or v1.3 line", errPrivate)
	}
	n, err := strconv.ParseUint(alg, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("%w: want an Algorithm: line with a number", errPrivate)
	}
	return uint8(n), nil
}
