package dnsserve

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Timeouts of the sockets served by Run.
const (
	// shutdownTimeout bounds how long Run waits for in-flight TCP replies
	// after its context is cancelled.
	shutdownTimeout = time.Second
	// writeTimeout bounds one TCP reply write; it also bounds how long a
	// slow TCP reader can delay shutdown.
	writeTimeout = time.Second
	// udpReadSize is the largest UDP query read, in bytes; anything longer
	// is cut and then fails to parse.
	udpReadSize = dns.MaxMsgSize
)

// binding is the sockets bound for one Listen address: a group of UDP
// sockets sharing the address with SO_REUSEPORT, and one TCP listener.
type binding struct {
	addr string // as given to Listen or SetListen
	udp  []*net.UDPConn
	tcp  net.Listener
	// readers counts the goroutines Run serves these sockets with: a
	// socket's file descriptor is released only when the goroutine
	// blocked on it has returned.
	readers sync.WaitGroup
}

// closeAndWait closes b and waits until its readers have returned, so that
// its ports can be bound again at once.
func (b *binding) closeAndWait() {
	b.close()
	b.readers.Wait()
}

// close releases every socket of b. Errors are those of already closed
// sockets and carry no information.
func (b *binding) close() {
	for _, c := range b.udp {
		_ = c.Close()
	}
	if b.tcp != nil {
		_ = b.tcp.Close()
	}
}

// bind binds addr on UDP (n sockets) and then TCP. With port 0 TCP first
// tries the port UDP got, so that both transports share a port when they
// can. On error nothing stays bound.
//
// An IPv4 host gets AF_INET sockets and an IPv6 host AF_INET6 sockets with
// IPV6_V6ONLY set (ipv6(7)), as Knot DNS and NSD do, so "0.0.0.0:53" and
// "[::]:53" are two sockets that can be bound side by side; only a host
// left empty (":53") gets one dual-stack socket for both families. A UDP
// socket on a wildcard address also asks for each datagram's destination
// address (IP_PKTINFO, IPV6_RECVPKTINFO), from which its replies are sent:
// see serveUDP.
func (s *Server) bind(addr string) (*binding, error) { return s.bindTCPAt(addr, "") }

// bindTCPAt is bind with the TCP socket on tcpAddr when it is not "" (to
// bind again exactly what a binding had: with port 0 the two transports may
// have got different ports).
func (s *Server) bindTCPAt(addr, tcpAddr string) (*binding, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	b := &binding{addr: addr}
	n := s.opts.udpSockets
	if !reusePortSupported {
		n = 1
	}
	udpNet, tcpNet := listenNetworks(host)
	lc := net.ListenConfig{Control: udpControl(n > 1, isWildcardHost(host))}
	udpAddr := addr
	for range n {
		pc, err := lc.ListenPacket(context.Background(), udpNet, udpAddr)
		if err != nil {
			b.close()
			return nil, fmt.Errorf("udp: %w", err)
		}
		c := pc.(*net.UDPConn)
		s.setReadBuffer(c)
		b.udp = append(b.udp, c)
		// The others join the port the first one got.
		udpAddr = net.JoinHostPort(host, strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port))
	}
	if tcpAddr != "" {
		addr = tcpAddr
	} else if p, perr := strconv.Atoi(port); perr == nil && p == 0 {
		b.tcp, _ = net.Listen(tcpNet, udpAddr) // taken: fall back to any port below
	}
	if b.tcp == nil {
		if b.tcp, err = net.Listen(tcpNet, addr); err != nil {
			b.close()
			return nil, fmt.Errorf("tcp: %w", err)
		}
	}
	return b, nil
}

// setReadBuffer enlarges c's receive buffer so that bursts are not dropped
// by the kernel (its default overflows under load). Failure only costs
// drops under load, so it is logged, not returned.
func (s *Server) setReadBuffer(c *net.UDPConn) {
	raw, err := c.SyscallConn()
	size := s.live.Load().opts.udpReadBuffer
	if err == nil && forceReadBuffer(raw, size) {
		return
	}
	if err := c.SetReadBuffer(size); err != nil {
		s.log.Warn().Err(err).Int("bytes", size).Msg("set UDP receive buffer")
	}
}
