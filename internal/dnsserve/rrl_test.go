package dnsserve

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// TestLimiterTokenBucket drives one bucket with a fake clock.
func TestLimiterTokenBucket(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0)
	l := newLimiter(RRL{Rate: 10, Slip: 2, Whitelist: []netip.Prefix{netip.MustParsePrefix("192.0.2.128/25")}}, epoch)
	var ip netip.Addr
	count := func(now time.Time, n int, ip netip.Addr) (pass, slip, drop int) {
		for range n {
			switch l.check(ip, now) {
			case rrlPass:
				pass++
			case rrlSlip:
				slip++
			case rrlDrop:
				drop++
			}
		}
		return
	}
	steps := []struct {
		name                     string
		at                       time.Duration
		n                        int
		ip                       string
		wantPass, wantSlip, drop int
	}{
		{"a full bucket holds one second: rate responses", 0, 30, "192.0.2.1", 10, 10, 10},
		{"same /24 shares the bucket", 0, 2, "192.0.2.77", 0, 1, 1},
		{"100ms refills one response", 100 * time.Millisecond, 2, "192.0.2.1", 1, 0, 1},
		{"a long pause refills at most one second", time.Hour, 12, "192.0.2.1", 10, 1, 1},
		{"another /24 has its own bucket", time.Hour, 10, "192.0.3.1", 10, 0, 0},
		{"whitelisted prefix is never limited", time.Hour, 50, "192.0.2.200", 50, 0, 0},
		{"IPv6 /56", time.Hour, 12, "2001:db8:0:1ff::1", 10, 1, 1},
		{"same IPv6 /56", time.Hour, 2, "2001:db8:0:100::2", 0, 1, 1},
		{"next IPv6 /56", time.Hour, 10, "2001:db8:0:200::1", 10, 0, 0},
		{"IPv4-mapped is IPv4", time.Hour, 1, "::ffff:192.0.3.9", 0, 0, 1},
		{"loopback is exempt by default", time.Hour, 50, "127.0.0.1", 50, 0, 0},
		{"IPv6 loopback too", time.Hour, 50, "::1", 50, 0, 0},
	}
	var want RRLStats
	for _, st := range steps {
		ip = netip.MustParseAddr(st.ip).Unmap()
		p, s, d := count(epoch.Add(st.at), st.n, ip)
		if p != st.wantPass || s != st.wantSlip || d != st.drop {
			t.Errorf("%s: pass/slip/drop %d/%d/%d; want %d/%d/%d", st.name, p, s, d, st.wantPass, st.wantSlip, st.drop)
		}
		want.Slipped += uint64(st.wantSlip)
		want.Dropped += uint64(st.drop)
	}
	want.Limited = want.Slipped + want.Dropped
	if diff := cmp.Diff(want, l.stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestLimiterSlipSettings(t *testing.T) {
	epoch := time.Unix(0, 0)
	for _, tt := range []struct {
		slip                 int
		wantSlipped, dropped int
	}{{1, 10, 0}, {3, 3, 7}, {-1, 0, 10}} {
		l := newLimiter(RRL{Rate: 1, Slip: tt.slip, Loopback: true}, epoch)
		ip := netip.MustParseAddr("127.0.0.1") // limited with Loopback set
		l.check(ip, epoch)                     // the one allowed
		for range 10 {
			l.check(ip, epoch)
		}
		if st := l.stats(); st.Slipped != uint64(tt.wantSlipped) || st.Dropped != uint64(tt.dropped) {
			t.Errorf("slip %d: slipped %d dropped %d; want %d, %d", tt.slip, st.Slipped, st.Dropped, tt.wantSlipped, tt.dropped)
		}
	}
	if newLimiter(RRL{Rate: -1}, epoch) != nil {
		t.Error("negative rate: limiter built; want none")
	}
}

// TestRRLLoopback sends 5,000 queries in one second from 127.0.0.1 to a
// server with the default rate (200/s) and slip (2). The server's clock is
// frozen, so the bucket holds exactly one second of responses and never
// refills: 200 full answers, then every second limited response truncated.
// A client with a valid server cookie, learnt over TCP, is never limited.
// Loopback clients are exempt by default; the test turns that off.
func TestRRLLoopback(t *testing.T) {
	frozen := time.Now()
	cfg := testConfig()
	cfg.RRL.Loopback = true // the test's only address
	s, udp, tcp := startServer(t, cfg, true, func(s *Server) {
		s.clock = func() time.Time { return frozen }
	})

	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(udp))

	var full, truncated int
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			if err := c.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
				return
			}
			n, err := c.Read(buf)
			if err != nil {
				select {
				case <-done:
					return // quiet after the last query
				default:
					continue
				}
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:n]) != nil {
				continue
			}
			if r.Truncated && len(r.Answer) == 0 {
				truncated++
			} else if len(r.Answer) == 2 {
				full++
			}
		}
	})
	const total = 5000
	q := mustPack(t, query(fqdn("api"), dns.TypeA))
	tick := time.NewTicker(time.Millisecond)
	for sent := 0; sent < total; {
		<-tick.C
		for range 5 {
			if _, err := c.WriteToUDP(q, dst); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	tick.Stop()
	close(done)
	wg.Wait()

	st := s.RRLStats()
	t.Logf("%d queries: %d full answers, %d truncated; server stats %+v", total, full, truncated, st)
	if full != defaultRRLRate {
		t.Errorf("%d full answers; want exactly the rate, %d", full, defaultRRLRate)
	}
	if limited := total - defaultRRLRate; st.Limited != uint64(limited) || st.Slipped != uint64(limited/2) {
		t.Errorf("server limited %d and slipped %d; want %d and %d", st.Limited, st.Slipped, limited, limited/2)
	}
	// Replies can be lost on loopback only if the client's buffer
	// overflows; allow 1%.
	if want := (total - defaultRRLRate) / 2; truncated < want*99/100 || truncated > want {
		t.Errorf("%d truncated replies; want about %d (slip 2)", truncated, want)
	}

	// TCP is never limited, and hands out a server cookie.
	m := dq(fqdn("api"), dns.TypeA, withOption(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "a1a2a3a4a5a6a7a8"}))
	r := exchange(t, "tcp", tcp, m)
	var cookie string
	for _, o := range r.IsEdns0().Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			cookie = c.Cookie
		}
	}
	if len(cookie) != 2*(clientCookieLen+serverCookieLen) || len(r.Answer) != 2 {
		t.Fatalf("TCP reply: cookie %q, %d answers; want a 24-byte cookie and the answer", cookie, len(r.Answer))
	}
	withCookie := dq(fqdn("api"), dns.TypeA, withOption(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cookie}))
	for i := range 50 {
		r := exchange(t, "udp", udp, withCookie)
		if r.Truncated || len(r.Answer) != 2 {
			t.Fatalf("query %d with a valid cookie: TC %t, %d answers; want the full answer", i, r.Truncated, len(r.Answer))
		}
	}
	if st := s.RRLStats(); st.CookieExempt != 50 {
		t.Errorf("CookieExempt %d; want 50", st.CookieExempt)
	}
}
