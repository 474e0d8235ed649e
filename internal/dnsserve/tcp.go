package dnsserve

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// tcpReadBuffer is the per-connection read buffer, in bytes: enough for a
// few pipelined queries while the connection is idle.
const tcpReadBuffer = 1024

// tcpConn is one accepted connection.
type tcpConn struct {
	net.Conn
	// idleSince is when the connection began waiting for its next query,
	// in Unix nanoseconds, or 0 while a query is read or answered.
	idleSince atomic.Int64
}

// connSet tracks the TCP connections of a Server to cap their number and to
// close them at shutdown.
type connSet struct {
	mu     sync.Mutex
	max    int // guarded by mu: SetOptions changes it
	conns  map[*tcpConn]struct{}
	closed bool
}

// setMax changes the connection cap. Above a lowered cap no connection is
// cut at once: each new one still replaces the one idle the longest, and
// the count falls as connections end.
func (cs *connSet) setMax(n int) {
	cs.mu.Lock()
	cs.max = n
	cs.mu.Unlock()
}

// add registers c and reports whether it may be served. At the cap it
// closes the connection idle the longest to make room; if none is idle, c
// is refused.
func (cs *connSet) add(c *tcpConn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	if len(cs.conns) >= cs.max {
		var oldest *tcpConn
		for o := range cs.conns {
			if t := o.idleSince.Load(); t != 0 && (oldest == nil || t < oldest.idleSince.Load()) {
				oldest = o
			}
		}
		if oldest == nil {
			return false
		}
		_ = oldest.Close() // its goroutine sees the error and exits
		delete(cs.conns, oldest)
	}
	cs.conns[c] = struct{}{}
	return true
}

// remove forgets c; it may already be gone.
func (cs *connSet) remove(c *tcpConn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.conns, c)
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
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off, do not spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn().Err(err).Dur("retry_in", delay).Msg("accept tcp")
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.stopping:
				t.Stop()
			}
			continue
		}
		delay = 0
		tc := &tcpConn{Conn: c}
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
// arrive, on any error, and at shutdown.
func (s *Server) serveConn(c *tcpConn) {
	defer s.conns.remove(c)
	defer c.Close()
	var from netip.AddrPort
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		from = a.AddrPort()
	}
	br := bufio.NewReaderSize(c, tcpReadBuffer)
	var prefix [2]byte
	for {
		now := time.Now()
		c.idleSince.Store(now.UnixNano())
		if c.SetReadDeadline(now.Add(s.live.Load().opts.tcpIdleTimeout)) != nil || s.shuttingDown() {
			return
		}
		if _, err := br.Peek(1); err != nil {
			return
		}
		c.idleSince.Store(0)
		if c.SetReadDeadline(time.Now().Add(s.live.Load().opts.tcpQueryTimeout)) != nil || s.shuttingDown() {
			return
		}
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(prefix[:]))
		if n == 0 {
			return
		}
		if !s.answerTCP(c, br, n, from) {
			return
		}
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
