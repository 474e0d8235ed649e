package dnsserve

import (
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dchest/siphash"
)

// rfc9018Secret is the secret of the RFC 9018 Appendix A examples.
var rfc9018Secret = [16]byte{0xe5, 0xe9, 0x73, 0xe5, 0xa6, 0xb2, 0xa4, 0x3f, 0x48, 0xe7, 0xdc, 0x84, 0x9e, 0x37, 0xbf, 0xcf}

func TestSipHash24ReferenceVector(t *testing.T) {
	// The paper's Appendix A: key 00..0f, message 00..0e.
	var key [16]byte
	msg := make([]byte, 15)
	for i := range key {
		key[i] = byte(i)
	}
	for i := range msg {
		msg[i] = byte(i)
	}
	s := newCookieSigner(key)
	if got, want := siphash.Hash(s.k0, s.k1, msg), uint64(0xa129ca6149be45e5); got != want {
		t.Errorf("siphash.Hash = %#x; want %#x", got, want)
	}
}

func TestServerCookieRFC9018Vectors(t *testing.T) {
	s := newCookieSigner(rfc9018Secret)
	ip := netip.MustParseAddr("198.51.100.100")
	cc, _ := hex.DecodeString("2464c4abcf10c957")
	tests := []struct {
		name string
		now  uint32
		want string
	}{
		{"A.1 learning a new server cookie", 1559731985, "010000005cf79f111f8130c3eee29480"},
		{"A.2 the same client 40 minutes later", 1559734385, "010000005cf7a871d4a564a1442aca77"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(s.appendServerCookie(nil, cc, ip, tt.now))
			if got != tt.want {
				t.Errorf("server cookie %s; want %s", got, tt.want)
			}
		})
	}
}

func TestServerCookieValidity(t *testing.T) {
	s := newCookieSigner(rfc9018Secret)
	ip := netip.MustParseAddr("2001:db8::53")
	cc := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	const issued = 1_700_000_000
	opt := s.appendServerCookie(append([]byte(nil), cc...), cc, ip, issued)
	tests := []struct {
		name string
		opt  []byte
		ip   netip.Addr
		now  uint32
		want bool
	}{
		{"fresh", opt, ip, issued, true},
		{"59 minutes old", opt, ip, issued + 3540, true},
		{"61 minutes old", opt, ip, issued + 3660, false},
		{"4 minutes in the future", opt, ip, issued - 240, true},
		{"6 minutes in the future", opt, ip, issued - 360, false},
		{"other client address", opt, netip.MustParseAddr("2001:db8::54"), issued, false},
		{"client cookie alone", opt[:8], ip, issued, false},
		{"hash flipped", flip(opt, 23), ip, issued, false},
		{"client cookie flipped", flip(opt, 0), ip, issued, false},
		{"version 2", flip(opt, 8), ip, issued, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.valid(tt.opt, tt.ip, tt.now); got != tt.want {
				t.Errorf("valid = %t; want %t", got, tt.want)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x03
	return c
}

func TestLoadCookieSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "e5e973e5a6b2a43f48e7dc849e37bfcf\n")
	if got, err := loadCookieSecret(good, os.ReadFile); err != nil || got != rfc9018Secret {
		t.Errorf("loadCookieSecret(good, os.ReadFile) = %x, %v; want %x", got, err, rfc9018Secret)
	}
	for _, p := range []string{write("short", "e5e973"), write("nothex", "zz"+"e973e5a6b2a43f48e7dc849e37bfcf"), filepath.Join(dir, "missing")} {
		if _, err := loadCookieSecret(p, os.ReadFile); err == nil {
			t.Errorf("loadCookieSecret(%s, os.ReadFile) = nil error; want one", filepath.Base(p))
		}
	}
	a, errA := loadCookieSecret("", os.ReadFile)
	b, errB := loadCookieSecret("", os.ReadFile)
	if errA != nil || errB != nil || a == b {
		t.Errorf("random secrets %x, %x (%v, %v); want two different ones", a, b, errA, errB)
	}
}

// TestCookieReplies checks the COOKIE option of replies (RFC 7873 section
// 5.2): a fresh valid server cookie for a client cookie, FORMERR for a
// malformed option, and the same on the fast and slow paths.
func TestCookieReplies(t *testing.T) {
	s := newBenchServer(t, -1)
	now := time.Unix(1_700_000_000, 0)
	s.clock = func() time.Time { return now }
	cookieOf := func(reply []byte) []byte {
		m := new(dns.Msg)
		if err := m.Unpack(reply); err != nil {
			t.Fatal(err)
		}
		if opt := m.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if c, ok := o.(*dns.EDNS0_COOKIE); ok {
					b, _ := hex.DecodeString(c.Cookie)
					return b
				}
			}
		}
		return nil
	}
	tests := []struct {
		name      string
		cookie    string
		wantRcode int
		wantValid bool
	}{
		{"client cookie only", "0102030405060708", dns.RcodeSuccess, true},
		{"stale server cookie is replaced", "0102030405060708" + "01000000" + "00000001" + "0011223344556677", dns.RcodeSuccess, true},
		{"7 bytes", "01020304050607", dns.RcodeFormatError, false},
		{"12 bytes", "010203040506070801020304", dns.RcodeFormatError, false},
		{"41 bytes", strings.Repeat("ab", 41), dns.RcodeFormatError, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := dq(fqdn("api"), dns.TypeA, withOption(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: tt.cookie}))
			reply := s.respond(nil, mustPack(t, m), benchClient, false)
			r := new(dns.Msg)
			if err := r.Unpack(reply); err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tt.wantRcode {
				t.Errorf("rcode %s; want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.wantRcode])
			}
			c := cookieOf(reply)
			if got := c != nil && s.live.Load().cookies.valid(c, benchClient.Addr(), uint32(now.Unix())); got != tt.wantValid {
				t.Errorf("reply cookie %x valid %t; want %t", c, got, tt.wantValid)
			}
		})
	}
}
