package dnsserve

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// haveIPv6Loopback reports whether ::1 can be bound here.
func haveIPv6Loopback() bool {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// replySource sends an A query to dst from an unconnected socket, which
// accepts a reply from any address (a connected one, as resolvers use,
// drops a reply from the wrong address, which is the failure this guards
// against), and returns the address the reply came from.
func replySource(t *testing.T, dst netip.AddrPort) (netip.AddrPort, error) {
	t.Helper()
	network, local := "udp4", netip.MustParseAddr("127.0.0.1")
	if dst.Addr().Is6() && !dst.Addr().Is4In6() {
		network, local = "udp6", netip.IPv6Loopback()
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := query(fqdn("api"), dns.TypeA)
	m.Id = 0x5353
	if _, err := c.WriteToUDPAddrPort(mustPack(t, m), dst); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return netip.AddrPort{}, err
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil || r.Id != 0x5353 || len(r.Answer) != 2 {
		t.Fatalf("reply to %s: %v, %v", dst, err, r)
	}
	return netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), nil
}

// TestWildcardUDPRepliesFromQueriedAddress queries a wildcard UDP listener
// at several loopback addresses and checks that each reply comes from the
// address the query was sent to (finding 4 of issue 15): before, a query
// to 127.0.0.55 on 0.0.0.0 was answered from 127.0.0.1 and dropped by the
// client. Both readers (recvmmsg and plain) and the three kinds of
// wildcard (IPv4, IPv6 only, and dual-stack ":port") are covered.
func TestWildcardUDPRepliesFromQueriedAddress(t *testing.T) {
	v6 := haveIPv6Loopback()
	for _, tc := range []struct {
		listen  string
		targets []string
		needV6  bool
	}{
		{"0.0.0.0:0", []string{"127.0.0.1", "127.0.0.55", "127.1.2.3"}, false},
		{"[::]:0", []string{"::1"}, true},
		{":0", []string{"127.0.0.55", "::1"}, true},
	} {
		for _, batched := range []bool{true, false} {
			name := tc.listen + "/plain"
			if batched {
				name = tc.listen + "/recvmmsg"
			}
			t.Run(name, func(t *testing.T) {
				if tc.needV6 && !v6 {
					t.Skip("no IPv6 loopback")
				}
				cfg := testConfig()
				cfg.Listen = []string{tc.listen}
				_, udp, _ := startServer(t, cfg, true, func(s *Server) { s.batchUDP = batched && udpBatchSupported })
				port := netip.MustParseAddrPort(udp).Port()
				for _, target := range tc.targets {
					dst := netip.AddrPortFrom(netip.MustParseAddr(target), port)
					got, err := replySource(t, dst)
					if err != nil {
						t.Errorf("query to %s: no reply: %v", dst, err)
						continue
					}
					if got != dst {
						t.Errorf("query to %s answered from %s", dst, got)
					}
				}
			})
		}
	}
}

// TestSpecificUDPSocketSkipsPktinfo checks that a socket bound to one
// address neither asks for destination addresses nor builds control
// messages: its replies cost what they did.
func TestSpecificUDPSocketSkipsPktinfo(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:0", false},
		{"0.0.0.0:0", pktinfoSupported},
	} {
		c, err := net.ListenPacket("udp4", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := repliesFromDst(c.(*net.UDPConn)); got != tc.want {
			t.Errorf("repliesFromDst(%s) = %t; want %t", tc.addr, got, tc.want)
		}
		c.Close()
	}
}
