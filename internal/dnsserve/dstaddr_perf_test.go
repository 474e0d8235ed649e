package dnsserve

import (
	"net"
	"strconv"
	"testing"
)

// TestWildcardUDPServerAllocs is TestUDPServerAllocs on a wildcard socket,
// whose replies carry their source address in a control message: the hot
// path must still allocate nothing.
func TestWildcardUDPServerAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and the race detector allocate")
	}
	for _, batched := range []bool{true, false} {
		cfg := testConfig()
		cfg.RRL.Rate = 1 << 30
		cfg.UDPSockets = 1
		_, u, _ := startOn(t, cfg, []string{"0.0.0.0:0"}, func(s *Server) { s.batchUDP = batched && udpBatchSupported })
		port := u[0].(*net.UDPAddr).Port
		// 127.0.0.55, not the address the routing table would pick.
		c, err := net.Dial("udp4", net.JoinHostPort("127.0.0.55", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		assertNoUDPAllocs(t, c, batched)
		c.Close()
	}
}

// BenchmarkUDPServerWildcard is BenchmarkUDPServer on a 0.0.0.0 socket
// queried at 127.0.0.55, so that each reply names its source address in a
// control message (IP_PKTINFO): the cost of replying from the queried
// address.
func BenchmarkUDPServerWildcard(b *testing.B) { benchUDP(b, "0.0.0.0:0", "127.0.0.55") }
