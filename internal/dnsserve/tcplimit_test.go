package dnsserve

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// fakeAddrConn is a net.Conn with a chosen remote address; only Close and
// RemoteAddr are used by connSet.
type fakeAddrConn struct {
	net.Conn
	remote net.Addr
	closed bool
}

func (f *fakeAddrConn) RemoteAddr() net.Addr { return f.remote }
func (f *fakeAddrConn) Close() error         { f.closed = true; return nil }

// connState is what a connection is doing, as connSet sees it.
type connState int

const (
	fresh   connState = iota // accepted, no whole query yet
	idle                     // answered at least one query, waiting for the next
	working                  // answered one, reading or answering the next
)

// fakeTCPConn returns a connection from addr accepted at base+at in state
// st (idle ones went idle at base+at too).
func fakeTCPConn(addr string, base time.Time, at time.Duration, st connState) *tcpConn {
	ap := netip.MustParseAddrPort(addr)
	c := newTCPConn(&fakeAddrConn{remote: net.TCPAddrFromAddrPort(ap)}, base.Add(at))
	switch st {
	case idle:
		c.answered.Store(true)
		c.idleSince.Store(base.Add(at).UnixNano())
	case working:
		c.answered.Store(true)
	}
	return c
}

// TestConnSetVictim fills a table of 8 (a client's share is 1) and checks
// which connection a newcomer replaces.
func TestConnSetVictim(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	type conn struct {
		addr string
		at   time.Duration
		st   connState
	}
	for _, tc := range []struct {
		name  string
		table []conn
		from  string
		want  int // index in table of the connection closed; -1: refused
	}{
		{
			name: "a flood of fresh connections from one address gives way to another client",
			table: []conn{
				{"127.0.0.1:1000", 1, fresh}, {"127.0.0.1:1001", 2, fresh}, {"127.0.0.1:1002", 0, fresh}, {"127.0.0.1:1003", 3, fresh},
				{"127.0.0.1:1004", 4, fresh}, {"127.0.0.1:1005", 5, fresh}, {"127.0.0.1:1006", 6, fresh}, {"127.0.0.1:1007", 7, fresh},
			},
			from: "127.0.0.2:2000",
			want: 2, // the oldest
		},
		{
			name: "the client holding the most gives way, not the oldest connection",
			table: []conn{
				{"192.0.2.1:1000", 0, fresh}, {"192.0.2.9:1000", 1, idle},
				{"198.51.100.7:1", 2, idle}, {"198.51.100.7:2", 3, fresh}, {"198.51.100.7:3", 4, idle},
				{"198.51.100.7:4", 5, working}, {"198.51.100.7:5", 6, fresh}, {"198.51.100.7:6", 7, fresh},
			},
			from: "203.0.113.1:53",
			want: 3, // its oldest fresh one, before its idle ones
		},
		{
			name: "a client over its share replaces its own",
			table: []conn{
				{"192.0.2.1:1000", 0, fresh}, {"192.0.2.2:1000", 1, fresh},
				{"198.51.100.7:1", 2, idle}, {"198.51.100.7:2", 3, idle}, {"198.51.100.7:3", 4, idle},
				{"192.0.2.3:1000", 5, fresh}, {"192.0.2.4:1000", 6, fresh}, {"192.0.2.5:1000", 7, fresh},
			},
			from: "192.0.2.1:2000",
			want: 0,
		},
		{
			name: "idle the longest when nothing is fresh",
			table: []conn{
				{"127.0.0.1:1", 0, working}, {"127.0.0.1:2", 5, idle}, {"127.0.0.1:3", 3, idle}, {"127.0.0.1:4", 4, idle},
				{"127.0.0.1:5", 1, working}, {"127.0.0.1:6", 6, idle}, {"127.0.0.1:7", 7, idle}, {"127.0.0.1:8", 8, idle},
			},
			from: "127.0.0.1:9",
			want: 2,
		},
		{
			name: "the heaviest client is all working: anyone else's",
			table: []conn{
				{"127.0.0.1:1", 0, working}, {"127.0.0.1:2", 1, working}, {"127.0.0.1:3", 2, working}, {"127.0.0.1:4", 3, working},
				{"127.0.0.1:5", 4, working}, {"192.0.2.1:1", 5, idle}, {"192.0.2.1:2", 6, idle}, {"192.0.2.2:1", 7, fresh},
			},
			from: "192.0.2.3:9",
			want: 7,
		},
		{
			name: "everything working: refused",
			table: []conn{
				{"127.0.0.1:1", 0, working}, {"127.0.0.1:2", 1, working}, {"127.0.0.1:3", 2, working}, {"127.0.0.1:4", 3, working},
				{"127.0.0.1:5", 4, working}, {"192.0.2.1:1", 5, working}, {"192.0.2.1:2", 6, working}, {"192.0.2.2:1", 7, working},
			},
			from: "192.0.2.3:9",
			want: -1,
		},
		{
			name: "an IPv6 /64 is one client",
			table: []conn{
				{"[2001:db8::1]:1", 0, idle}, {"[2001:db8::2]:1", 1, fresh}, {"[2001:db8::3]:1", 2, idle}, {"[2001:db8::4]:1", 3, fresh},
				{"[2001:db8:0:1::1]:1", 4, fresh}, {"[2001:db8:0:2::1]:1", 5, fresh}, {"[2001:db8:0:3::1]:1", 6, fresh}, {"[2001:db8:0:4::1]:1", 7, fresh},
			},
			from: "[2001:db8:0:5::1]:1",
			want: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := connSet{max: 8, conns: make(map[*tcpConn]struct{})}
			var conns []*tcpConn
			for _, c := range tc.table {
				tc := fakeTCPConn(c.addr, base, c.at*time.Second, c.st)
				if !cs.add(tc) {
					t.Fatalf("add %s to a table below its cap refused", c.addr)
				}
				conns = append(conns, tc)
			}
			newcomer := fakeTCPConn(tc.from, base, time.Minute, fresh)
			ok := cs.add(newcomer)
			if ok != (tc.want >= 0) {
				t.Fatalf("add = %t; want %t", ok, tc.want >= 0)
			}
			for i, c := range conns {
				if closed := c.Conn.(*fakeAddrConn).closed; closed != (i == tc.want) {
					t.Errorf("connection %d (%s) closed = %t; want %t", i, tc.table[i].addr, closed, i == tc.want)
				}
			}
			if got := cs.count(); got != 8 {
				t.Errorf("%d connections after the newcomer; want 8", got)
			}
			n := 0
			for _, k := range cs.perClient {
				n += k
			}
			if n != cs.count() {
				t.Errorf("per-client counts add up to %d; want %d", n, cs.count())
			}
		})
	}
}

// TestConnSetBusy checks that connections accepted once three quarters
// of the table are taken are marked busy, and that removing them leaves
// no per-client count behind.
func TestConnSetBusy(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	cs := connSet{max: 8, conns: make(map[*tcpConn]struct{})}
	var conns []*tcpConn
	for i := range 8 {
		c := fakeTCPConn("127.0.0.1:1", base, time.Duration(i), fresh)
		cs.add(c)
		if want := i+1 >= 6; c.busy != want {
			t.Errorf("connection %d: busy %t; want %t", i+1, c.busy, want)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		cs.remove(c)
		cs.remove(c) // twice is harmless
	}
	if len(cs.perClient) != 0 || cs.count() != 0 {
		t.Errorf("after removing all: %d connections, per-client %v", cs.count(), cs.perClient)
	}
}

// TestTCPBusyFirstQueryDeadline fills three quarters of the table with
// idle connections and checks that one accepted then, which sends nothing,
// is closed after TCPQueryTimeout/busyQueryDiv, while the earlier ones
// keep their TCPIdleTimeout.
func TestTCPBusyFirstQueryDeadline(t *testing.T) {
	cfg := testConfig()
	cfg.TCPMaxConns = 8
	cfg.TCPQueryTimeout = 2 * time.Second // busy deadline 500ms
	cfg.TCPIdleTimeout = time.Minute
	s, _, tcp := startServer(t, cfg, true)
	early := dialMany(t, tcp, 5)
	testenv.Eventually(t, 5*time.Second, "5 connections registered", func() bool { return s.conns.count() == 5 })
	start := time.Now()
	late := dialMany(t, tcp, 1)
	took := testenv.Eventually(t, 5*time.Second, "the connection accepted into a busy table closed", func() bool { return closedByServer(late[0]) })
	if took < 400*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("busy connection closed after %v; want about 500ms", time.Since(start))
	}
	for i, c := range early {
		if closedByServer(c) {
			t.Errorf("connection %d, accepted before the table was busy, closed after %v", i, time.Since(start))
		}
	}
	timedQuery(t, "tcp", tcp) // the table still answers
}
