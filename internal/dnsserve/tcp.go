package dnsserve

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdu/spdu-haproxy/internal/listener"
)

// tcpReadBuffer is the per-connection read buffer, in bytes: enough for a
// few pipelined queries while the connection is idle.
const tcpReadBuffer = 1024

// Defences of the TCP connection table against a client that fills it
// with connections that never complete a query (finding 5 of issue 15:
// 1000 connections that each sent one byte left 2 of 76 other clients'
// queries answered). RFC 7766 section 6.2.2 lets a server limit the
// connections of one client address or subnet, "much looser" than the one
// connection a client should use since many clients may share an address,
// and section 6.2.3 lets it close idle connections, sooner under load.
// Unbound likewise gives connections accepted into a nearly full table a
// short timeout.
const (
	// perClientShareDiv sets a client's share of the table at the cap:
	// tcpMaxConns/perClientShareDiv connections (125 of the default 1000),
	// at least 1. A client is an IPv4 address (/32) or an IPv6 /64.
	perClientShareDiv = 8
	// busyNum/busyDen is the fill at which the table counts as nearly
	// full: three quarters.
	busyNum, busyDen = 3, 4
	// busyQueryDiv shortens the first query of a connection accepted into
	// a nearly full table: it must arrive whole within
	// tcpQueryTimeout/busyQueryDiv of the accept (500ms of the default
	// 2s), where it otherwise has tcpIdleTimeout to begin and
	// tcpQueryTimeout to finish. A resolver sends its query with the
	// handshake's last segment, so this costs it nothing.
	busyQueryDiv = 4
)

// tcpConn is one accepted connection.
type tcpConn struct {
	net.Conn
	// from is the client's address and port; client is the address
	// masked to its /32 (IPv4) or /64 (IPv6), the unit of the per-client
	// share.
	from   netip.AddrPort
	client netip.Addr
	// accepted is when the connection was accepted.
	accepted time.Time
	// busy is set when the connection was accepted into a nearly full
	// table, which shortens its first query's deadline.
	busy bool
	// idleSince is when the connection began waiting for its next query,
	// in Unix nanoseconds, or 0 while a query is read or answered.
	idleSince atomic.Int64
	// answered is set once a whole query has been read from it.
	answered atomic.Bool
}

// newTCPConn wraps an accepted connection.
func newTCPConn(c net.Conn, now time.Time) *tcpConn {
	tc := &tcpConn{Conn: c, accepted: now}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		tc.from = a.AddrPort()
	}
	tc.client = clientOf(tc.from.Addr())
	return tc
}

// clientOf returns the /32 of an IPv4 address or the /64 of an IPv6 one:
// one client, as far as the connection table is concerned (an IPv6 host
// usually has a whole /64 to pick addresses from).
func clientOf(a netip.Addr) netip.Addr {
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 32
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a
	}
	return p.Addr()
}

// connSet tracks the TCP connections of a Server to cap their number and to
// close them at shutdown.
type connSet struct {
	mu    sync.Mutex
	max   int // guarded by mu: SetOptions changes it
	conns map[*tcpConn]struct{}
	// perClient counts the connections of each client (clientOf); made
	// on first use.
	perClient map[netip.Addr]int
	closed    bool
}

// setMax changes the connection cap. Above a lowered cap no connection is
// cut at once: each new one still replaces another, and the count falls as
// connections end.
func (cs *connSet) setMax(n int) {
	cs.mu.Lock()
	cs.max = n
	cs.mu.Unlock()
}

// add registers c and reports whether it may be served; it sets c.busy if
// the table is nearly full. At the cap it first closes another connection
// to make room (victimLocked); if none may be closed, c is refused.
func (cs *connSet) add(c *tcpConn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	if cs.perClient == nil {
		cs.perClient = make(map[netip.Addr]int)
	}
	if len(cs.conns) >= cs.max {
		v := cs.victimLocked(c.client)
		if v == nil {
			return false
		}
		_ = v.Close() // its goroutine sees the error and exits
		cs.forgetLocked(v)
	}
	cs.conns[c] = struct{}{}
	cs.perClient[c.client]++
	c.busy = len(cs.conns)*busyDen >= cs.max*busyNum
	return true
}

// victimLocked chooses the connection to close so that a new one of client
// fits in a full table. A client already holding its share
// (tcpMaxConns/perClientShareDiv) gives up one of its own connections, so
// it cannot take more of the table from the others; any other client takes
// one from the client holding the most. Among a client's connections the
// victim is the oldest that has not completed a query yet, else the one
// idle the longest; a connection reading a later query or writing a reply
// is never chosen. If the chosen client has nothing to give up, the same
// rule runs over the whole table; nil means every connection is busy.
func (cs *connSet) victimLocked(client netip.Addr) *tcpConn {
	from := client
	if cs.perClient[client] < max(cs.max/perClientShareDiv, 1) {
		from, _ = cs.heaviestLocked()
	}
	if v := cs.worstLocked(from, true); v != nil {
		return v
	}
	return cs.worstLocked(netip.Addr{}, false)
}

// heaviestLocked returns the client with the most connections, and how many.
func (cs *connSet) heaviestLocked() (netip.Addr, int) {
	var top netip.Addr
	n := 0
	for a, k := range cs.perClient {
		if k > n || (k == n && a.Less(top)) {
			top, n = a, k
		}
	}
	return top, n
}

// worstLocked returns the connection victimLocked would close among those
// of client (of every client unless only), or nil.
func (cs *connSet) worstLocked(client netip.Addr, only bool) *tcpConn {
	var fresh, idle *tcpConn // oldest without a query; idle the longest
	var idleAt int64
	for o := range cs.conns {
		if only && o.client != client {
			continue
		}
		if !o.answered.Load() {
			if fresh == nil || o.accepted.Before(fresh.accepted) {
				fresh = o
			}
			continue
		}
		if t := o.idleSince.Load(); t != 0 && (idle == nil || t < idleAt) {
			idle, idleAt = o, t
		}
	}
	if fresh != nil {
		return fresh
	}
	return idle
}

// forgetLocked drops c from the table and its client's count.
func (cs *connSet) forgetLocked(c *tcpConn) {
	if _, ok := cs.conns[c]; !ok {
		return
	}
	delete(cs.conns, c)
	if cs.perClient[c.client]--; cs.perClient[c.client] <= 0 {
		delete(cs.perClient, c.client)
	}
}

// remove forgets c; it may already be gone.
func (cs *connSet) remove(c *tcpConn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.forgetLocked(c)
}

// closeAll refuses new connections and makes every open one stop reading
// now; a reply being written still gets writeTimeout.
func (cs *connSet) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.closed = true
	for c := range cs.conns {
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
}

// count returns the number of open connections.
func (cs *connSet) count() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.conns)
}

// tcpBuffers are the buffers one TCP query needs while it is answered; idle
// connections hold none.
type tcpBuffers struct {
	in  [maxTCPReply]byte
	out [2 + maxTCPReply]byte
}

// serveTCP accepts connections on ln until it is closed, serving each in a
// goroutine tracked by wg.
func (s *Server) serveTCP(ln net.Listener, wg *sync.WaitGroup) error {
	for {
		c, err := listener.Accept(ln, s.stopping, s.log, "accept tcp")
		if err != nil {
			return nil // closed
		}
		tc := newTCPConn(c, time.Now())
		if !s.conns.add(tc) {
			_ = c.Close()
			continue
		}
		wg.Go(func() { s.serveConn(tc) })
	}
}

// shuttingDown reports whether Run has begun to shut down. serveConn asks
// after each SetReadDeadline: Run's connSet.closeAll sets a deadline in the
// past after stopping is closed, so a connection either sees stopping here
// or gets that past deadline afterwards, never a fresh deadline that
// outlives the shutdown.
func (s *Server) shuttingDown() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// serveConn answers the queries of one connection in order (RFC 7766
// section 6.2.1.1 pipelining: the client need not wait for a reply before
// sending the next query). The connection is closed after TCPIdleTimeout
// without a query, when a query's bytes take longer than TCPQueryTimeout to
// arrive, on any error, and at shutdown. A connection accepted into a
// nearly full table (c.busy) must have its first query whole within
// TCPQueryTimeout/busyQueryDiv of the accept.
func (s *Server) serveConn(c *tcpConn) {
	defer s.conns.remove(c)
	defer c.Close()
	br := bufio.NewReaderSize(c, tcpReadBuffer)
	var prefix [2]byte
	first := c.busy
	if first {
		if c.SetReadDeadline(c.accepted.Add(s.live.Load().opts.tcpQueryTimeout/busyQueryDiv)) != nil || s.shuttingDown() {
			return
		}
	}
	for {
		now := time.Now()
		c.idleSince.Store(now.UnixNano())
		if !first && (c.SetReadDeadline(now.Add(s.live.Load().opts.tcpIdleTimeout)) != nil || s.shuttingDown()) {
			return
		}
		if _, err := br.Peek(1); err != nil {
			return
		}
		c.idleSince.Store(0)
		if !first && (c.SetReadDeadline(time.Now().Add(s.live.Load().opts.tcpQueryTimeout)) != nil || s.shuttingDown()) {
			return
		}
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(prefix[:]))
		if n == 0 {
			return
		}
		if !s.answerTCP(c, br, n, c.from) {
			return
		}
		first = false
	}
}

// answerTCP reads one query of n bytes from br, and writes its reply, if
// any, to c. It reports whether the connection may go on.
func (s *Server) answerTCP(c *tcpConn, br *bufio.Reader, n int, from netip.AddrPort) bool {
	b := s.tcpBufs.Get().(*tcpBuffers)
	defer s.tcpBufs.Put(b)
	msg := b.in[:n]
	if _, err := io.ReadFull(br, msg); err != nil {
		return false
	}
	c.answered.Store(true)
	reply := s.respond(b.out[2:2], msg, from, true)
	if reply == nil {
		return true
	}
	if len(reply) > maxTCPReply {
		return false
	}
	frame := binary.BigEndian.AppendUint16(b.out[:0], uint16(len(reply)))
	frame = append(frame, reply...) // reply already sits there: a no-op copy
	if c.SetWriteDeadline(time.Now().Add(writeTimeout)) != nil {
		return false
	}
	_, err := c.Write(frame)
	return err == nil
}
