package dnsserve

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// Timeouts of the sockets served by Run.
const (
	// shutdownTimeout bounds how long Run waits for in-flight queries after
	// its context is cancelled.
	shutdownTimeout = time.Second
	// readTimeout is the time a TCP client has to send its first query
	// (RFC 7766 section 6.2.3 leaves it to the server).
	readTimeout = 2 * time.Second
	// writeTimeout bounds one reply write; it also bounds how long a slow
	// TCP reader can delay shutdown.
	writeTimeout = time.Second
	// udpReadSize is the largest UDP query read, in bytes. Queries are
	// small; anything longer is cut and then fails to parse.
	udpReadSize = dns.DefaultMsgSize
)

// listener is one bound socket (UDP or TCP) and the dns.Server that serves it.
type listener struct {
	network string // "udp" or "tcp"
	addr    net.Addr
	pc      net.PacketConn // set for UDP
	ln      net.Listener   // set for TCP
	srv     *dns.Server
	log     zerolog.Logger

	started chan struct{} // closed once srv serves
	done    chan struct{} // closed once srv.ActivateAndServe has returned
}

// listenPair binds addr on UDP and then TCP. With port 0 TCP first tries the
// port UDP got, so that both transports share a port when they can.
func (s *Server) listenPair(addr string) (u, t *listener, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("udp: %w", err)
	}
	var ln net.Listener
	if p, perr := strconv.Atoi(port); perr == nil && p == 0 {
		same := net.JoinHostPort(host, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
		ln, _ = net.Listen("tcp", same) // taken: fall back to any port below
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", addr); err != nil {
			_ = pc.Close() // nothing was served on it; the bind error matters
			return nil, nil, fmt.Errorf("tcp: %w", err)
		}
	}
	u = s.newListener("udp", pc.LocalAddr())
	u.pc, u.srv.PacketConn = pc, pc
	t = s.newListener("tcp", ln.Addr())
	t.ln, t.srv.Listener = ln, ln
	return u, t, nil
}

// newListener returns a listener whose dns.Server sends every request to s.
func (s *Server) newListener(network string, addr net.Addr) *listener {
	l := &listener{
		network: network,
		addr:    addr,
		log:     s.log.With().Str("network", network).Stringer("addr", addr).Logger(),
		started: make(chan struct{}),
		done:    make(chan struct{}),
	}
	l.srv = &dns.Server{
		Net:           network,
		Handler:       s,
		UDPSize:       udpReadSize,
		ReadTimeout:   readTimeout,
		WriteTimeout:  writeTimeout,
		MsgAcceptFunc: acceptRequest,
		NotifyStartedFunc: func() {
			l.log.Info().Msg("dns listener started")
			close(l.started)
		},
	}
	return l
}

// serve runs the dns.Server until shutdown, and sends an error that stopped
// it on its own to failed, which must have room for it.
func (l *listener) serve(failed chan<- error) {
	defer close(l.done)
	if err := l.srv.ActivateAndServe(); err != nil {
		failed <- fmt.Errorf("dnsserve: serve %s %s: %w", l.network, l.addr, err)
	}
}

// shutdown stops the dns.Server once it has started (or failed to), waits
// for serve to return and releases the socket.
func (l *listener) shutdown(ctx context.Context) {
	select {
	case <-l.started:
	case <-l.done:
	}
	select {
	case <-l.done:
	default:
		if err := l.srv.ShutdownContext(ctx); err != nil {
			l.log.Warn().Err(err).Msg("dns listener shutdown timed out; waiting for in-flight queries")
		}
	}
	<-l.done
	l.close()
	l.log.Info().Msg("dns listener stopped")
}

// close releases the socket. The dns.Server normally has closed it already,
// so the error (net.ErrClosed) carries no information.
func (l *listener) close() {
	if l.pc != nil {
		_ = l.pc.Close()
	}
	if l.ln != nil {
		_ = l.ln.Close()
	}
}
