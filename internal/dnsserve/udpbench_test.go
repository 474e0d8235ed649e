package dnsserve

import (
	"context"
	"net"
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
func BenchmarkUDPServer(b *testing.B) {
	for _, batched := range []bool{false, true} {
		name := "plain"
		if batched {
			name = "recvmmsg"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig()
			cfg.RRL.Rate = -1
			cfg.UDPSockets = 1
			s, err := New(zerolog.Nop(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			s.setServing(true)
			s.batchUDP = batched
			if err := s.Bind(); err != nil {
				b.Fatal(err)
			}
			u, _ := s.Addrs()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			defer func() { cancel(); <-done }()

			q := mustPack(b, query(fqdn("api"), dns.TypeA))
			const clients, window = 4, 32
			per := b.N/clients + 1
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					c, err := net.Dial("udp", u[0].String())
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
