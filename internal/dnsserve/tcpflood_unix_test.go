//go:build unix

package dnsserve

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// Finding 5 of issue 15: one address held every TCP slot with connections
// that each sent one byte of a query, renewed at about 500 per second, and
// only 2 of 76 legitimate TCP queries were answered.
const (
	floodConns  = 1000                 // attacker connections kept open, the default cap
	floodRenew  = 2 * time.Millisecond // one new connection every 2ms: 500/s
	floodHold   = 3 * time.Second      // the attacker's end of each, longer than TCPQueryTimeout
	legitCount  = 4                    // legitimate clients, each on its own address
	legitEach   = 25                   // queries per legitimate client
	legitPace   = 80 * time.Millisecond
	legitWithin = time.Second // a query answered later than this counts as lost
)

// TestTCPSlotFlood runs that attack from 127.0.0.1 against a server with
// the default TCP limits, while four legitimate clients on 127.0.0.2 to
// 127.0.0.5 each open a fresh connection for each of their queries, and
// requires at least 90% of those queries answered within a second.
func TestTCPSlotFlood(t *testing.T) {
	var lim syscall.Rlimit
	need := 2 * (floodConns + int(floodHold/floodRenew)) // both ends of each
	// lim.Cur is int64 on some systems, hence the conversion.
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(lim.Cur) < uint64(need+200) {
		t.Skipf("RLIMIT_NOFILE %d: the attack needs about %d descriptors", lim.Cur, need)
	}
	s, _, tcp := startServer(t, testConfig(), true)
	if got := s.live.Load().opts.tcpMaxConns; got != floodConns {
		t.Fatalf("TCP connection cap %d; the attack is sized for %d", got, floodConns)
	}

	stop := make(chan struct{})
	filled := make(chan struct{})
	var attackDials, attackFails atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { slowLorisFlood(tcp, stop, filled, &attackDials, &attackFails) })
	defer func() {
		close(stop)
		wg.Wait()
	}()
	select {
	case <-filled:
	case <-time.After(10 * time.Second):
		t.Fatal("the attacker did not open its connections within 10s")
	}
	testenv.Eventually(t, 5*time.Second, "the attack fills three quarters of the table", func() bool {
		return s.conns.count() >= floodConns*3/4
	})

	var answered, total atomic.Int64
	var slowest atomic.Int64
	var lw sync.WaitGroup
	for i := range legitCount {
		src := net.IPv4(127, 0, 0, byte(2+i))
		lw.Go(func() {
			tick := time.NewTicker(legitPace) // the client's pace
			defer tick.Stop()
			for q := range legitEach {
				if q > 0 {
					<-tick.C
				}
				total.Add(1)
				took, ok := legitTCPQuery(tcp, src)
				if ok && took <= legitWithin {
					answered.Add(1)
					if int64(took) > slowest.Load() {
						slowest.Store(int64(took))
					}
				}
			}
		})
	}
	lw.Wait()
	n, ok := total.Load(), answered.Load()
	t.Logf("under a one-byte-per-connection flood from 127.0.0.1 (%d connections, then one more every %v; %d dialled, %d dials failed; %d server connections now): %d of %d legitimate TCP queries (%.0f%%) answered within %v, slowest %v",
		floodConns, floodRenew, attackDials.Load(), attackFails.Load(), s.conns.count(), ok, n, 100*float64(ok)/float64(n), legitWithin, time.Duration(slowest.Load()))
	if ok*10 < n*9 {
		t.Errorf("%d of %d legitimate TCP queries answered within %v; want at least 90%%", ok, n, legitWithin)
	}
}

// slowLorisFlood opens floodConns connections to addr from 127.0.0.1, each
// sending the first byte of a length prefix and nothing more, closes
// filled, then opens one more every floodRenew until stop is closed. It
// leaves each connection to the server, which holds it until its query
// timeout, and closes its own end after floodHold; at the end it closes
// them all.
func slowLorisFlood(addr string, stop <-chan struct{}, filled chan<- struct{}, dials, fails *atomic.Int64) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: time.Second}
	type held struct {
		c     net.Conn
		since time.Time
	}
	var ring []held
	defer func() {
		for _, h := range ring {
			h.c.Close()
		}
	}()
	open := func() {
		dials.Add(1)
		c, err := d.Dial("tcp", addr)
		if err != nil {
			fails.Add(1)
			return
		}
		if _, err := c.Write([]byte{0}); err != nil {
			fails.Add(1)
			c.Close()
			return
		}
		ring = append(ring, held{c, time.Now()})
	}
	for range floodConns {
		select {
		case <-stop:
			close(filled)
			return
		default:
		}
		open()
	}
	close(filled)
	tick := time.NewTicker(floodRenew)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			for len(ring) > 0 && now.Sub(ring[0].since) > floodHold {
				ring[0].c.Close()
				ring = ring[1:]
			}
		}
		open()
	}
}

// legitTCPQuery asks for api over a new TCP connection from src and
// reports how long the answer took, dial included, and whether it came
// (with the query's ID and both addresses) within legitWithin.
func legitTCPQuery(addr string, src net.IP) (time.Duration, bool) {
	start := time.Now()
	// The context bounds dial, write and read together; Timeout alone
	// would restart for the exchange after the dial.
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(legitWithin))
	defer cancel()
	c := dns.Client{Net: "tcp", Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}, Timeout: legitWithin}
	r, _, err := c.ExchangeContext(ctx, query(fqdn("api"), dns.TypeA), addr)
	if err != nil || len(r.Answer) != 2 {
		return 0, false // dns.Client rejects a reply of another ID (dns.ErrId)
	}
	return time.Since(start), true
}
