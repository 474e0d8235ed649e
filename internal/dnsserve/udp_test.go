package dnsserve

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// TestUDPSocketsShareThePort binds four UDP sockets on one address with
// SO_REUSEPORT and checks that clients on many source ports, which the
// kernel spreads over the sockets, are all answered.
func TestUDPSocketsShareThePort(t *testing.T) {
	if !reusePortSupported {
		t.Skip("no SO_REUSEPORT here")
	}
	cfg := testConfig()
	cfg.UDPSockets = 4
	s, err := New(zerolog.Nop(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.setServing(true)
	if err := s.Bind(); err != nil {
		t.Fatal(err)
	}
	b := s.bindings[0]
	if len(b.udp) != 4 {
		t.Fatalf("%d UDP sockets; want 4", len(b.udp))
	}
	for _, c := range b.udp[1:] {
		if c.LocalAddr().String() != b.udp[0].LocalAddr().String() {
			t.Errorf("socket on %s; want all on %s", c.LocalAddr(), b.udp[0].LocalAddr())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	addr := b.udp[0].LocalAddr().String()
	for range 32 { // a fresh client socket, so a fresh source port, each time
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		r, _, err := c.Exchange(query(fqdn("api"), dns.TypeA), addr)
		if err != nil || len(r.Answer) != 2 {
			t.Fatalf("exchange: %v, %v", err, r)
		}
	}
	if _, ok := b.udp[0].LocalAddr().(*net.UDPAddr); !ok {
		t.Fatal("not a UDP address")
	}
}

// TestPlainUDPReader runs answers and garbage through the one-datagram
// reader used where recvmmsg batching is not built.
func TestPlainUDPReader(t *testing.T) {
	_, udp, tcp := startServer(t, testConfig(), true, func(s *Server) { s.batchUDP = false })
	runAnswerCases(t, udp, tcp, []answerCase{
		{"A", fqdn("api"), dns.TypeA, noerror(rrA("api", "192.0.2.10"), rrA("api", "192.0.2.11"))},
		{"NXDOMAIN", fqdn("nope"), dns.TypeA, nxdomain()},
		{"out of zone", "example.org.", dns.TypeA, refused()},
	})
	if r := rawExchange(t, udp, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, 200*time.Millisecond); r != nil && r.Rcode != dns.RcodeFormatError {
		t.Errorf("garbage: rcode %s; want FORMERR or no reply", dns.RcodeToString[r.Rcode])
	}
	assertAnswers(t, "udp", udp)
}

// TestUDPServerAllocs measures heap allocations in the whole process per
// query answered over a real socket, reader included: the hot path must
// allocate nothing, so the average stays far below one. It runs on a
// socket bound to the address queried, and on a wildcard socket queried
// at 127.0.0.55 (not the address the routing table would pick), whose
// replies carry their source address in a control message.
func TestUDPServerAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("coverage and the race detector allocate")
	}
	for _, tc := range []struct{ name, listen, host string }{
		{"specific", "127.0.0.1:0", "127.0.0.1"},
		{"wildcard", "0.0.0.0:0", "127.0.0.55"},
	} {
		for _, batched := range []bool{true, false} {
			t.Run(tc.name+"/"+map[bool]string{true: "recvmmsg", false: "plain"}[batched], func(t *testing.T) {
				cfg := testConfig()
				cfg.RRL.Rate = 1 << 30
				cfg.UDPSockets = 1
				cfg.Listen = []string{tc.listen}
				_, udp, _ := startServer(t, cfg, true, quietLog, func(s *Server) { s.batchUDP = batched && udpBatchSupported })
				_, port, err := net.SplitHostPort(udp)
				if err != nil {
					t.Fatal(err)
				}
				c, err := net.Dial("udp4", net.JoinHostPort(tc.host, port))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				assertNoUDPAllocs(t, c, batched)
			})
		}
	}
}

// assertNoUDPAllocs sends 2,000 A queries on c, one at a time after 100
// to warm up, and fails the test if the whole process allocated more than
// 0.2 times per query on average.
func assertNoUDPAllocs(t *testing.T, c net.Conn, batched bool) {
	t.Helper()
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
}
