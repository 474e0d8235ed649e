//go:build unix

package dnsserve

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// checkV6Only returns an error unless every socket of b has IPV6_V6ONLY
// set.
func checkV6Only(b *binding) error {
	conns := []syscall.Conn{b.tcp.(syscall.Conn)}
	for _, c := range b.udp {
		conns = append(conns, c)
	}
	for _, c := range conns {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var v int
		var serr error
		if err := rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) }); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		if v != 1 {
			return fmt.Errorf("IPV6_V6ONLY is %d; want 1", v)
		}
	}
	return nil
}

// TestListenBothFamiliesOnOnePort listens on "0.0.0.0:P" and "[::]:P"
// together, the usual way to say every address of both families (as in
// Knot's and NSD's examples), and checks that both answer over UDP and
// TCP. Before IPv6 sockets were IPV6_V6ONLY (and IPv4 ones AF_INET), the
// second failed with "address already in use": Go had bound 0.0.0.0 as a
// dual-stack [::] socket.
func TestListenBothFamiliesOnOnePort(t *testing.T) {
	if !haveIPv6Loopback() {
		t.Skip("no IPv6 loopback")
	}
	// A port that UDP and TCP share, as in TestReloadSamePort.
	var s *Server
	var port string
	for try := 0; ; try++ {
		var err error
		cfg := testConfig()
		cfg.Listen = []string{"0.0.0.0:0"}
		if s, err = New(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), cfg); err != nil {
			t.Fatal(err)
		}
		s.setServing(true)
		if err := s.Bind(); err != nil {
			t.Fatal(err)
		}
		u, tc := s.Addrs()
		_, up, _ := net.SplitHostPort(u[0].String())
		_, tp, _ := net.SplitHostPort(tc[0].String())
		if up == tp {
			port = up
			break
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Run(ctx); err != nil { // releases the sockets
			t.Fatal(err)
		}
		if try == 10 {
			t.Fatalf("no shared UDP and TCP port in 10 tries: %s, %s", u[0], tc[0])
		}
	}
	// "0.0.0.0:0" is kept as it is; "[::]:port" is bound beside it.
	if err := reloadListen(s, []string{"0.0.0.0:0", "[::]:" + port}); err != nil {
		t.Fatalf("listen on 0.0.0.0:%s and [::]:%s: %v", port, port, err)
	}
	runServer(t, s)
	for _, host := range []string{"127.0.0.1", "::1"} {
		addr := net.JoinHostPort(host, port)
		if !answersOn(t, addr, addr) {
			t.Errorf("no answer over UDP and TCP on %s", addr)
		}
	}
	if err := checkV6Only(s.bindings[1]); err != nil {
		t.Errorf("[::]:%s: %v", port, err)
	}
}
