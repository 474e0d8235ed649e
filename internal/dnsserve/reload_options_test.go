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
)

// optionOf returns the reply's EDNS0 option of the given code as a string
// (NSID: the identity in hex, "6e732d61" for "ns-a"; COOKIE: client and server cookie in hex), or
// "" if absent.
func optionOf(r *dns.Msg, code uint16) string {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if o.Option() == code {
				return o.String()
			}
		}
	}
	return ""
}

// TestReloadOptions: identity, cookie secret and rate limiting change on a
// running server; a bad Config changes nothing; the RRL counters only grow.
func TestReloadOptions(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "cookie.key")
	writeSecret := func(hex string) {
		if err := os.WriteFile(secret, []byte(hex+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeSecret("00112233445566778899aabbccddeeff")
	cfg := testConfig()
	cfg.Identity, cfg.CookieSecretFile = "ns-a", secret
	now := time.Unix(1_700_000_000, 0)
	s, udp, _ := startServer(t, cfg, true, func(s *Server) { s.clock = func() time.Time { return now } })
	setOptions := func(c Config) error { return reload(s, c) }

	nsid := func() string {
		t.Helper()
		return optionOf(exchange(t, "udp", udp, dq(fqdn("api"), dns.TypeA, withOption(&dns.EDNS0_NSID{Code: dns.EDNS0NSID}))), dns.EDNS0NSID)
	}
	cookie := func() string {
		t.Helper()
		m := dq(fqdn("api"), dns.TypeA, withOption(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}))
		return optionOf(exchange(t, "udp", udp, m), dns.EDNS0COOKIE)
	}
	if got := nsid(); got != "6e732d61" {
		t.Fatalf("NSID before = %q", got)
	}
	c1 := cookie()
	if len(c1) != 48 {
		t.Fatalf("cookie before = %q, want client and server cookie", c1)
	}

	// Identity, cookie secret (same file, new content) and rate limiting
	// (every loopback response over 1/s dropped) in one reload.
	writeSecret("ffeeddccbbaa99887766554433221100")
	next := cfg
	next.Identity = "ns-b"
	next.RRL = RRL{Rate: 1, Slip: -1, Loopback: true}
	if err := setOptions(next); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := nsid(); got != "6e732d62" {
		t.Errorf("NSID after reload = %q, want ns-b", got)
	}
	// Both queries above and these count against the 1/s bucket: keep
	// asking until one is dropped.
	dropped := false
	for range 20 {
		c := &dns.Client{Net: "udp", Timeout: 100 * time.Millisecond}
		if _, _, err := c.Exchange(query(fqdn("api"), dns.TypeA), udp); err != nil {
			dropped = true
			break
		}
	}
	st := s.RRLStats()
	if !dropped || st.Dropped == 0 {
		t.Fatalf("rate limiting of 1/s did not drop: %+v", st)
	}

	// Rate limiting off again: counters kept; a new secret gives a new
	// server cookie for the same client cookie, IP and time.
	next.RRL = RRL{Rate: -1}
	if err := setOptions(next); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := s.RRLStats(); got.Dropped < st.Dropped {
		t.Errorf("RRLStats went back from %+v to %+v", st, got)
	}
	c2 := cookie()
	if len(c2) != 48 || c2[:16] != c1[:16] || c2 == c1 {
		t.Errorf("cookies before and after a new secret: %q, %q; want the same client part and a new server part", c1, c2)
	}
	// The cookie made with the previous secret stays valid until it ages
	// out (rollover); one from two secrets back does not.
	valid := func(c string) bool {
		b, err := hex.DecodeString(c)
		if err != nil {
			t.Fatal(err)
		}
		return s.live.Load().validCookie(b, netip.MustParseAddr("127.0.0.1"), uint32(now.Unix()))
	}
	if !valid(c1) || !valid(c2) {
		t.Errorf("after one rotation: previous-secret cookie valid %t, current %t; want both", valid(c1), valid(c2))
	}
	writeSecret("0123456789abcdef0123456789abcdef")
	if err := setOptions(next); err != nil {
		t.Fatal(err)
	}
	if valid(c1) || !valid(c2) {
		t.Errorf("after a second rotation: cookie of two secrets back valid %t (want false), previous %t (want true)", valid(c1), valid(c2))
	}
	c2 = cookie()

	// Invalid: names the field, changes nothing.
	bad := next
	bad.Identity = `ns"c`
	if err := setOptions(bad); err == nil || !strings.Contains(err.Error(), "Identity") {
		t.Errorf("reload with a bad identity: %v", err)
	}
	bad = next
	bad.CookieSecretFile = filepath.Join(dir, "missing.key")
	if err := setOptions(bad); err == nil {
		t.Error("reload with a missing cookie secret file succeeded")
	}
	if got := nsid(); got != "6e732d62" {
		t.Errorf("NSID after refused reload = %q, want ns-b still", got)
	}
	if c3 := cookie(); c3 != c2 {
		t.Errorf("server cookie changed after refused reload: %q, then %q", c2, c3)
	}

	// With no secret file before and after, the random secret stays, so
	// clients' cookies stay valid; hiding the identity drops NSID.
	next.CookieSecretFile = ""
	if err := setOptions(next); err != nil {
		t.Fatal(err)
	}
	c4 := cookie()
	next.HideIdentity = true
	if err := setOptions(next); err != nil {
		t.Fatal(err)
	}
	if c5 := cookie(); c5 != c4 {
		t.Errorf("random secret changed across a reload without a file: %q, then %q", c4, c5)
	}
	if got := nsid(); got != "" {
		t.Errorf("NSID %q with HideIdentity", got)
	}
}
