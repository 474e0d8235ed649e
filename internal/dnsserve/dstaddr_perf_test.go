package dnsserve

import (
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
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
		q := mustPack(t, query(fqdn("api"), dns.TypeA))
		buf := make([]byte, 1500)
		roundTrips := func(n int) {
			for range n {
				if _, err := c.Write(q); err != nil {
					t.Fatal(err)
				}
				if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					t.Fatal(err)
				}
			}
		}
		roundTrips(100)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const n = 2000
		roundTrips(n)
		runtime.ReadMemStats(&after)
		perQuery := float64(after.Mallocs-before.Mallocs) / n
		t.Logf("batched %t: %.3f allocations per query, whole process", batched, perQuery)
		if perQuery > 0.2 {
			t.Errorf("batched %t: %.3f allocations per query; want about 0", batched, perQuery)
		}
		c.Close()
	}
}

// BenchmarkUDPServerWildcard is BenchmarkUDPServer on a 0.0.0.0 socket
// queried at 127.0.0.55, so that each reply names its source address in a
// control message (IP_PKTINFO): the cost of replying from the queried
// address.
func BenchmarkUDPServerWildcard(b *testing.B) {
	for _, batched := range []bool{false, true} {
		name := "plain"
		if batched {
			name = "recvmmsg"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig()
			cfg.RRL.Rate = -1
			cfg.UDPSockets = 1
			cfg.Listen = []string{"0.0.0.0:0"}
			s, err := New(zerolog.Nop(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			s.setServing(true)
			s.batchUDP = batched && udpBatchSupported
			if err := s.Bind(); err != nil {
				b.Fatal(err)
			}
			runServer(b, s)
			u, _ := s.Addrs()
			addr := net.JoinHostPort("127.0.0.55", strconv.Itoa(u[0].(*net.UDPAddr).Port))
			q := mustPack(b, query(fqdn("api"), dns.TypeA))
			const clients, window = 4, 32
			per := b.N/clients + 1
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					c, err := net.Dial("udp4", addr)
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					buf := make([]byte, 1500)
					for sent := 0; sent < per; sent += window {
						for range window {
							if _, err := c.Write(q); err != nil {
								b.Error(err)
								return
							}
						}
						if err := c.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
							b.Error(err)
							return
						}
						for range window {
							if _, err := c.Read(buf); err != nil {
								break // a lost datagram: go on with the next window
							}
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
