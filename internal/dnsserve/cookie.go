package dnsserve

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/dchest/siphash"
)

// Server cookie layout and lifetime (RFC 9018 sections 4.2 and 4.3).
const (
	clientCookieLen = 8    // RFC 7873 section 4
	serverCookieLen = 16   // version, reserved, timestamp, hash
	cookieVersion   = 1    // RFC 9018 section 4.2
	cookieMaxAge    = 3600 // seconds a server cookie stays valid
	cookieMaxFuture = 300  // seconds a timestamp may be ahead of the clock
)

// cookieSecretLen is the SipHash-2-4 key length, in bytes.
const cookieSecretLen = 16

// cookieSigner makes and checks interoperable server cookies (RFC 9018):
// every server that shares the secret accepts the others' cookies.
type cookieSigner struct {
	k0, k1 uint64 // the secret as SipHash-2-4 key halves
}

// newCookieSigner returns a signer for the 16-byte secret.
func newCookieSigner(secret [cookieSecretLen]byte) *cookieSigner {
	return &cookieSigner{
		k0: binary.LittleEndian.Uint64(secret[:8]),
		k1: binary.LittleEndian.Uint64(secret[8:]),
	}
}

// loadCookieSecret reads with read a secret of 32 hex digits (surrounding white space
// allowed) from path, or makes a random one if path is empty.
func loadCookieSecret(path string, read func(string) ([]byte, error)) ([cookieSecretLen]byte, error) {
	var secret [cookieSecretLen]byte
	if path == "" {
		_, err := rand.Read(secret[:])
		return secret, err
	}
	b, err := read(path)
	if err != nil {
		return secret, fmt.Errorf("config CookieSecretFile: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) != 2*cookieSecretLen {
		return secret, fmt.Errorf("config CookieSecretFile %s: want %d hex digits, got %d characters", path, 2*cookieSecretLen, len(s))
	}
	if _, err := hex.Decode(secret[:], []byte(s)); err != nil {
		return secret, fmt.Errorf("config CookieSecretFile %s: %w", path, err)
	}
	return secret, nil
}

// hash returns the 8-byte hash of a server cookie for the client cookie cc,
// the cookie's first 8 bytes hdr (version, reserved, timestamp) and the
// client address (RFC 9018 section 4.4).
func (c *cookieSigner) hash(cc, hdr []byte, ip netip.Addr) uint64 {
	var in [clientCookieLen + 8 + 16]byte
	n := copy(in[:], cc)
	n += copy(in[n:], hdr)
	if ip.Is4() {
		a := ip.As4()
		n += copy(in[n:], a[:])
	} else {
		a := ip.As16()
		n += copy(in[n:], a[:])
	}
	return siphash.Hash(c.k0, c.k1, in[:n])
}

// appendServerCookie appends the server cookie for the client cookie cc
// from ip at unix time now (seconds) to dst.
func (c *cookieSigner) appendServerCookie(dst, cc []byte, ip netip.Addr, now uint32) []byte {
	var hdr [8]byte
	hdr[0] = cookieVersion
	binary.BigEndian.PutUint32(hdr[4:], now)
	dst = append(dst, hdr[:]...)
	return binary.LittleEndian.AppendUint64(dst, c.hash(cc, hdr[:], ip))
}

// valid reports whether the COOKIE option data opt (client cookie followed
// by server cookie) carries a server cookie this secret made for ip that is
// neither older than cookieMaxAge nor more than cookieMaxFuture ahead of now
// (RFC 9018 section 4.3; RFC 1982 arithmetic on the timestamp).
func (c *cookieSigner) valid(opt []byte, ip netip.Addr, now uint32) bool {
	if len(opt) != clientCookieLen+serverCookieLen || opt[clientCookieLen] != cookieVersion {
		return false
	}
	sc := opt[clientCookieLen:]
	ts := binary.BigEndian.Uint32(sc[4:])
	if age := int32(now - ts); age > cookieMaxAge || age < -cookieMaxFuture {
		return false
	}
	return binary.LittleEndian.Uint64(sc[8:]) == c.hash(opt[:clientCookieLen], sc[:8], ip)
}
