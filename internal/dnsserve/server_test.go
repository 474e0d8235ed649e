package dnsserve

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// fakeClock is a settable clock; the query path reads it concurrently.
type fakeClock struct{ unix atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}

func (c *fakeClock) set(t time.Time) { c.unix.Store(t.Unix()) }
func (c *fakeClock) now() time.Time  { return time.Unix(c.unix.Load(), 0) }

// servedSerial asks addr for the apex SOA and returns its serial.
func servedSerial(t *testing.T, udp string) uint32 {
	t.Helper()
	r := exchange(t, "udp", udp, query(testZone, dns.TypeSOA))
	if len(r.Answer) != 1 {
		t.Fatalf("SOA query: %d answers, rcode %s", len(r.Answer), dns.RcodeToString[r.Rcode])
	}
	return r.Answer[0].(*dns.SOA).Serial
}

func TestSetServingSerial(t *testing.T) {
	// A clock behind the serial: each change is prev+1.
	clock := newFakeClock(time.Now().Add(-1000 * time.Second))
	s, udp, _ := startServer(t, testConfig(), false, func(s *Server) { s.clock = clock.now })
	if s.Serving() {
		t.Fatal("Serving() = true after New; want false")
	}
	start := s.Serial()
	if now := uint32(time.Now().Unix()); start > now || now-start > 60 {
		t.Fatalf("initial Serial() = %d; want about the current Unix time %d", start, now)
	}
	clock.set(time.Unix(int64(start)-1000, 0))

	steps := []struct {
		name        string
		serving     bool
		clock       time.Time // zero: leave the clock alone
		wantServing bool
		wantSerial  uint32
	}{
		{"withdrawn again is no change", false, time.Time{}, false, start},
		{"serve with a slow clock: prev+1", true, time.Time{}, true, start + 1},
		{"serve again is no change", true, time.Time{}, true, start + 1},
		{"serve again, clock jumped, still no change", true, time.Unix(int64(start)+5000, 0), true, start + 1},
		{"withdraw with a fast clock: now", false, time.Time{}, false, start + 5000},
		{"withdraw again is no change", false, time.Time{}, false, start + 5000},
		{"serve in the same second: prev+1", true, time.Time{}, true, start + 5001},
	}
	for _, st := range steps {
		if !st.clock.IsZero() {
			clock.set(st.clock)
		}
		s.setServing(st.serving)
		if got := s.Serving(); got != st.wantServing {
			t.Errorf("%s: Serving() = %t; want %t", st.name, got, st.wantServing)
		}
		if got := s.Serial(); got != st.wantSerial {
			t.Errorf("%s: Serial() = %d; want %d", st.name, got, st.wantSerial)
		}
		if st.wantServing {
			if got := servedSerial(t, udp); got != st.wantSerial {
				t.Errorf("%s: served SOA serial %d; want %d", st.name, got, st.wantSerial)
			}
		}
	}
}

func TestNextSerial(t *testing.T) {
	tests := []struct {
		name string
		prev uint32
		now  int64
		want uint32
	}{
		{"clock ahead", 100, 200, 200},
		{"clock equal to prev+1", 100, 101, 101},
		{"clock equal to prev", 100, 100, 101},
		{"clock behind", 100, 50, 101},
		{"prev wraps to 0", 0xffffffff, 50, 50},
		{"prev near wrap, clock behind in serial arithmetic", 0xffffff00, 0xfffffe00, 0xffffff01},
		{"prev beyond 2106 wraps past now", 0xffffffff, 0, 0},
		{"clock more than 2^31 ahead is behind in serial arithmetic", 1, 1 + 1<<31 + 10, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextSerial(tt.prev, tt.now); got != tt.want {
				t.Errorf("nextSerial(%d, %d) = %d; want %d", tt.prev, tt.now, got, tt.want)
			}
		})
	}
}

// TestServeConcurrentStateChanges races queries against SetServing; with
// -race it checks that snapshots are published safely, and every reply must
// be one of the two consistent states.
func TestServeConcurrentStateChanges(t *testing.T) {
	s, udp, tcp := startServer(t, testConfig(), true)

	serving := noerror(rrA("api", "192.0.2.10"), rrA("api", "192.0.2.11"))
	withdrawn := refused()
	for _, w := range []*summary{&serving, &withdrawn} {
		w.Opcode = "QUERY"
		w.Question = question(fqdn("api"), dns.TypeA, dns.ClassINET)
	}

	stop := make(chan struct{})
	var toggler sync.WaitGroup
	toggler.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				s.setServing(i%2 == 0)
			}
		}
	})

	var clients sync.WaitGroup
	for i := range 8 {
		network, addr := "udp", udp
		if i%2 == 1 {
			network, addr = "tcp", tcp
		}
		clients.Go(func() {
			c := &dns.Client{Net: network, Timeout: 2 * time.Second}
			for range 25 {
				r, _, err := c.Exchange(query(fqdn("api"), dns.TypeA), addr)
				if err != nil {
					t.Errorf("%s exchange: %v", network, err)
					return
				}
				got := summarize(r)
				if cmp.Diff(serving, got) != "" && cmp.Diff(withdrawn, got) != "" {
					t.Errorf("inconsistent reply (-serving +got):\n%s", cmp.Diff(serving, got))
				}
			}
		})
	}
	clients.Wait()
	close(stop)
	toggler.Wait()
}

func TestRunStopsOnCancel(t *testing.T) {
	cfg := testConfig()
	cfg.Listen = []string{"127.0.0.1:0", "127.0.0.1:0"}
	s, err := New(zerolog.Nop(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.setServing(true)
	if err := s.Bind(); err != nil {
		t.Fatal(err)
	}
	udps, tcps := s.Addrs()
	if len(udps) != 2 || len(tcps) != 2 {
		t.Fatalf("Addrs() = %v, %v; want two of each", udps, tcps)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	for i := range udps {
		assertAnswers(t, "udp", udps[i].String())
		assertAnswers(t, "tcp", tcps[i].String())
	}
	// An idle TCP client must not hold up shutdown.
	idle, err := net.Dial("tcp", tcps[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v; want nil after cancel", err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("Run took %v to return after cancel; want about 1s at most", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return within 3s of cancel")
	}

	for _, a := range tcps {
		if c, err := net.Dial("tcp", a.String()); err == nil {
			c.Close()
			t.Errorf("TCP %s still accepts after Run returned", a)
		}
	}
	for _, a := range udps {
		// The port is free again once the socket is closed.
		pc, err := net.ListenPacket("udp", a.String())
		if err != nil {
			t.Errorf("UDP %s still bound after Run returned: %v", a, err)
			continue
		}
		pc.Close()
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("second Run() = nil; want an error")
	}
}

func TestBindAndRunErrors(t *testing.T) {
	newServer := func(t *testing.T, listen ...string) *Server {
		cfg := testConfig()
		if listen != nil {
			cfg.Listen = listen
		}
		s, err := New(zerolog.Nop(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("Run before Bind", func(t *testing.T) {
		err := newServer(t).Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "before Bind") {
			t.Errorf("Run() = %v; want a before-Bind error", err)
		}
	})
	t.Run("no address", func(t *testing.T) {
		cfg := testConfig()
		cfg.Listen = nil
		if _, err := New(zerolog.Nop(), cfg); err == nil || !strings.Contains(err.Error(), "Listen") {
			t.Errorf("New without Listen = %v; want an error naming Listen", err)
		}
	})
	t.Run("malformed address", func(t *testing.T) {
		err := newServer(t, "127.0.0.1").Bind()
		if err == nil || !strings.Contains(err.Error(), "listen 127.0.0.1:") {
			t.Errorf("Bind() = %v; want an error naming 127.0.0.1", err)
		}
	})
	t.Run("TCP port taken releases the UDP socket", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		addr := taken.Addr().String()

		s := newServer(t, "127.0.0.1:0", addr)
		err = s.Bind()
		if err == nil || !strings.Contains(err.Error(), "listen "+addr+": tcp:") {
			t.Fatalf("Bind() = %v; want a TCP error naming %s", err, addr)
		}
		if u, tc := s.Addrs(); len(u) != 0 || len(tc) != 0 {
			t.Errorf("Addrs() after failed Bind = %v, %v; want none", u, tc)
		}
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("UDP %s still bound after failed Bind: %v", addr, err)
		}
		pc.Close()
	})
	t.Run("Bind twice, Close", func(t *testing.T) {
		s := newServer(t)
		if err := s.Bind(); err != nil {
			t.Fatal(err)
		}
		if err := s.Bind(); err == nil {
			t.Error("second Bind() = nil; want an error")
		}
		u, _ := s.Addrs()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", u[0].String())
		if err != nil {
			t.Fatalf("UDP %s still bound after Close: %v", u[0], err)
		}
		pc.Close()
	})
}
