package dnssec

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// The DNSSEC algorithms this package loads, generates and signs with
// (IANA "DNS Security Algorithm Numbers"; RFC 8624 section 3.1 lists both
// as recommended for signing).
const (
	// ECDSAP256SHA256 is algorithm 13 (RFC 6605), the default.
	ECDSAP256SHA256 = dns.ECDSAP256SHA256
	// ED25519 is algorithm 15 (RFC 8080).
	ED25519 = dns.ED25519
)

// DNSKEY flags values a zone key may carry (RFC 4034 section 2.1.1): the
// Zone Key bit, with or without the Secure Entry Point bit. The REVOKE bit
// (RFC 5011) and keys without the Zone Key bit are refused.
const (
	FlagsZSK = dns.ZONE           // 256: zone-signing key
	FlagsKSK = dns.ZONE | dns.SEP // 257: key-signing or combined signing key
)

// ParseAlgorithm returns the number of the algorithm named s, as the keygen
// command takes it: "ecdsap256sha256" or "ed25519" in any case, or the
// numbers "13" and "15". Any other value is an error that lists the
// supported names.
func ParseAlgorithm(s string) (uint8, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ecdsap256sha256", "13":
		return ECDSAP256SHA256, nil
	case "ed25519", "15":
		return ED25519, nil
	}
	return 0, fmt.Errorf("algorithm %q not supported: use ecdsap256sha256 (13) or ed25519 (15)", s)
}

// algorithmName returns BIND's mnemonic of alg ("ECDSAP256SHA256"), or its
// number when it has none.
func algorithmName(alg uint8) string {
	if s, ok := dns.AlgorithmToString[alg]; ok {
		return s
	}
	return strconv.Itoa(int(alg))
}

// Key is one zone key: a DNSKEY of the zone apex and, for this site's own
// keys, the private key that signs with it. Peer keys (the other sites'
// public keys, RFC 8901 section 2.1.2 model 2) are published in the DNSKEY
// RRset and never sign. A Key is built by ParseKeyPair, ParsePublicKey,
// LoadKeyPair, LoadPublicKey or Generate and must not be modified after.
//
// Formatting a Key (String, GoString, %v, %+v, %#v) or its Signer never shows
// private material.
type Key struct {
	// DNSKEY is the public key record: owner the zone apex in lower case,
	// class IN, flags FlagsZSK or FlagsKSK, protocol 3, and the TTL of the
	// key file in seconds (0 when the file gives none; KeySet.DNSKEYs sets
	// the TTL that is served).
	DNSKEY *dns.DNSKEY
	// Tag is the key tag of DNSKEY (RFC 4034 appendix B).
	Tag uint16
	// Algorithm is ECDSAP256SHA256 or ED25519, the same as DNSKEY.Algorithm.
	Algorithm uint8
	// Signer signs with the private key for an own key; nil for a peer key.
	// Its Public() is the key in DNSKEY. It formats as "[private key]".
	Signer crypto.Signer
	// File is the path of the key files without the .key or .private
	// suffix, as passed to the parser or loader ("dir/K<zone>+<alg>+<tag>"),
	// or the base name alone for a key made by Generate.
	File string
}

// Own reports whether k has a private key, that is whether it signs.
func (k Key) Own() bool { return k.Signer != nil }

// String describes k without its private material, for messages:
// "FILE (ECDSAP256SHA256, tag 3730, own key)".
func (k Key) String() string {
	role := "peer key"
	if k.Own() {
		role = "own key"
	}
	return fmt.Sprintf("%s (%s, tag %d, %s)", k.File, algorithmName(k.Algorithm), k.Tag, role)
}

// GoString is String, so that %#v does not print the Signer's fields.
func (k Key) GoString() string { return k.String() }

// DS returns the DS record of k with a SHA-256 digest (RFC 4034 section 5,
// digest type 2 of RFC 4509), owner the zone apex, class IN and the TTL of
// k.DNSKEY. It is what the parent zone publishes to point at k.
func (k Key) DS() *dns.DS {
	return k.DNSKEY.ToDS(dns.SHA256)
}

// privateSigner wraps the private key of an own key so that no formatting
// verb, JSON or text encoding can print it.
type privateSigner struct {
	s crypto.Signer
}

const redacted = "[private key]"

func (p privateSigner) Public() crypto.PublicKey { return p.s.Public() }

func (p privateSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return p.s.Sign(rand, digest, opts)
}

func (privateSigner) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) }
func (privateSigner) String() string               { return redacted }
func (privateSigner) GoString() string             { return redacted }
func (privateSigner) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (privateSigner) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// publicKeyBytes returns the DNSKEY public key field of pub (RFC 6605
// section 4: X then Y, 32 octets each; RFC 8080 section 3: the 32 octets
// of the Ed25519 key).
func publicKeyBytes(pub crypto.PublicKey) ([]byte, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key not on P-256")
		}
		b, err := p.Bytes()
		if err != nil {
			return nil, err
		}
		return b[1:], nil // drop the 0x04 of the uncompressed point
	case ed25519.PublicKey:
		return []byte(p), nil
	}
	return nil, fmt.Errorf("unsupported public key type %T", pub)
}

// checkPublicKey checks that the public key field of k decodes and is a
// valid key of its algorithm (a point on P-256, or 32 octets for Ed25519),
// and returns its octets.
func checkPublicKey(k *dns.DNSKEY) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("public key is not base64: %w", err)
	}
	switch k.Algorithm {
	case ECDSAP256SHA256:
		if len(raw) != 64 {
			return nil, fmt.Errorf("ECDSAP256SHA256 public key has %d octets, want 64", len(raw))
		}
		if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, raw...)); err != nil {
			return nil, fmt.Errorf("ECDSAP256SHA256 public key is not a point on P-256")
		}
	case ED25519:
		if len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ED25519 public key has %d octets, want %d", len(raw), ed25519.PublicKeySize)
		}
	default:
		return nil, fmt.Errorf("algorithm %d (%s) not supported: use 13 (ECDSAP256SHA256) or 15 (ED25519)", k.Algorithm, algorithmName(k.Algorithm))
	}
	return raw, nil
}

// keyBaseName returns BIND's base name of the files of a key of zone with
// algorithm alg and key tag tag: "K" + zone (with its final dot) + "+" +
// three-digit algorithm + "+" + five-digit tag.
func keyBaseName(zone string, alg uint8, tag uint16) string {
	return fmt.Sprintf("K%s+%03d+%05d", zone, alg, tag)
}

// b64 is the base64 of RFC 4648 section 4, as the DNSKEY and RRSIG
// presentation formats use it.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
