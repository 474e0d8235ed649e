package dnsserve

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// answers reports whether a UDP and a TCP query to the given addresses get
// the serving answer for api A.
func answersOn(t *testing.T, udp, tcp string) bool {
	t.Helper()
	for _, n := range []struct{ network, addr string }{{"udp", udp}, {"tcp", tcp}} {
		c := &dns.Client{Net: n.network, Timeout: 500 * time.Millisecond}
		r, _, err := c.Exchange(query(fqdn("api"), dns.TypeA), n.addr)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
			return false
		}
	}
	return true
}

func TestReloadMovesListeners(t *testing.T) {
	s, udp1, tcp1 := startServer(t, testConfig(), true)
	if !answersOn(t, udp1, tcp1) {
		t.Fatal("no answer on the first address")
	}

	// Add a second address: the first keeps its sockets.
	if err := reloadListen(s, []string{"127.0.0.1:0", "127.0.0.2:0"}); err != nil {
		t.Fatalf("reload add: %v", err)
	}
	u, tc := s.Addrs()
	if len(u) != 2 || u[0].String() != udp1 || tc[0].String() != tcp1 {
		t.Fatalf("Addrs after add = %v %v; want %s first, kept", u, tc, udp1)
	}
	udp2, tcp2 := u[1].String(), tc[1].String()
	if !strings.HasPrefix(udp2, "127.0.0.2:") {
		t.Fatalf("second address %s, want 127.0.0.2", udp2)
	}
	if !answersOn(t, udp1, tcp1) || !answersOn(t, udp2, tcp2) {
		t.Fatal("not answering on both addresses")
	}

	// A bad list changes nothing.
	for _, bad := range [][]string{{"127.0.0.2:0", "127.0.0.1:notaport"}, {"127.0.0.3:0", "192.0.2.1:53"}, nil} {
		err := reloadListen(s, bad)
		if err == nil {
			t.Fatalf("reload(%q) succeeded", bad)
		}
		if len(bad) > 0 && !strings.Contains(err.Error(), bad[len(bad)-1]) {
			t.Errorf("reload(%q) error %q does not name the address", bad, err)
		}
		if u, _ := s.Addrs(); len(u) != 2 {
			t.Fatalf("Addrs after failed reload(%q) = %v", bad, u)
		}
	}
	if !answersOn(t, udp1, tcp1) || !answersOn(t, udp2, tcp2) {
		t.Fatal("a failed reload stopped an address")
	}

	// Drop the first address: it stops answering, the second goes on.
	if err := reloadListen(s, []string{"127.0.0.2:0"}); err != nil {
		t.Fatalf("reload drop: %v", err)
	}
	if u, _ := s.Addrs(); len(u) != 1 || u[0].String() != udp2 {
		t.Fatalf("Addrs after drop = %v; want %s", u, udp2)
	}
	if !answersOn(t, udp2, tcp2) {
		t.Fatal("the kept address stopped answering")
	}
	if c, err := net.DialTimeout("tcp", tcp1, time.Second); err == nil {
		c.Close()
		t.Errorf("TCP %s still accepts after it was dropped", tcp1)
	}
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	if _, _, err := c.Exchange(query(fqdn("api"), dns.TypeA), udp1); err == nil {
		t.Errorf("UDP %s still answers after it was dropped", udp1)
	}
}

// TestReloadBeforeRunAndAfterStop: before Run, a reload replaces what
// Bind bound (a reload can come before Run has started); once Run has
// stopped it fails.
func TestReloadBeforeRunAndAfterStop(t *testing.T) {
	s, err := New(zerolog.Nop(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Bind(); err != nil {
		t.Fatal(err)
	}
	if err := reloadListen(s, []string{"127.0.0.2:0"}); err != nil {
		t.Fatalf("reload before Run: %v", err)
	}
	u, tc := s.Addrs()
	if len(u) != 1 || !strings.HasPrefix(u[0].String(), "127.0.0.2:") {
		t.Fatalf("Addrs after reload before Run = %v", u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	s.setServing(true)
	if !answersOn(t, u[0].String(), tc[0].String()) {
		t.Fatal("no answer on the address set before Run")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := reloadListen(s, []string{"127.0.0.1:0"}); err == nil {
		t.Fatal("reload after Run stopped succeeded")
	}
}

// TestReloadSamePort: a new address that the kernel refuses while a
// dropped one holds its port (here the same socket address spelled as an
// IPv4-mapped IPv6 address, which behaves like 0.0.0.0:53 narrowed to one
// address) takes over: the old one is closed first. If a later address of
// the same list fails, the old one is bound again.
func TestReloadSamePort(t *testing.T) {
	// The take-over binds both transports on one port: start on a port
	// that UDP and TCP share (with port 0 they share it unless another
	// socket holds that TCP port already).
	var s *Server
	var udp, tcp, port string
	for try := 0; ; try++ {
		s, udp, tcp = startServer(t, testConfig(), true)
		_, up, _ := net.SplitHostPort(udp)
		_, tp, _ := net.SplitHostPort(tcp)
		if up == tp {
			port = up
			break
		}
		if try == 10 {
			t.Fatalf("no shared UDP and TCP port in 10 tries: %s, %s", udp, tcp)
		}
	}
	mapped := net.JoinHostPort("::ffff:127.0.0.1", port)

	// A failing list: the old address is closed early for mapped, then
	// the bad address fails, and the old one must be back.
	if err := reloadListen(s, []string{mapped, "127.0.0.1:notaport"}); err == nil {
		t.Fatal("reload with a bad address succeeded")
	}
	if u, _ := s.Addrs(); len(u) != 1 || u[0].String() != udp {
		t.Fatalf("Addrs after a failed take-over = %v; want %s again", u, udp)
	}
	if !answersOn(t, udp, tcp) {
		t.Fatal("the old address does not answer after a failed take-over")
	}

	if err := reloadListen(s, []string{mapped}); err != nil {
		t.Fatalf("reload(%s) over %s: %v", mapped, udp, err)
	}
	if !answersOn(t, udp, tcp) {
		t.Fatal("no answer on the port after the take-over")
	}
}
