package dnsserve

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// BenchmarkUDPServer measures answered queries over loopback, client and
// server in one process (so its ns/op includes the client's system calls):
// four clients keep windows of 32 queries in flight. Run with -cpuprofile
// to see where the server spends its time.
func BenchmarkUDPServer(b *testing.B) { benchUDP(b, "127.0.0.1:0", "127.0.0.1") }

// BenchmarkUDPServerWildcard is BenchmarkUDPServer on a 0.0.0.0 socket
// queried at 127.0.0.55, so that each reply names its source address in a
// control message (IP_PKTINFO): the cost of replying from the queried
// address.
func BenchmarkUDPServerWildcard(b *testing.B) { benchUDP(b, "0.0.0.0:0", "127.0.0.55") }

// benchUDP runs BenchmarkUDPServer's load, plain and with recvmmsg, at a
// server listening on listen, sending the queries to host on its port.
func benchUDP(b *testing.B, listen, host string) {
	for _, batched := range []bool{false, true} {
		name := "plain"
		if batched {
			name = "recvmmsg"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig()
			cfg.RRL.Rate = -1
			cfg.UDPSockets = 1
			cfg.Listen = []string{listen}
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
			addr := net.JoinHostPort(host, strconv.Itoa(u[0].(*net.UDPAddr).Port))
			q := mustPack(b, query(fqdn("api"), dns.TypeA))
			const clients, window = 4, 32
			per := b.N/clients + 1
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					c, err := net.Dial("udp", addr)
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
