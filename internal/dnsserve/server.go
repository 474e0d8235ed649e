package dnsserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Server is the authoritative server of one zone. Build it with New, bind it
// with Listen, serve with Run, and flip its state with SetServing from any
// goroutine. Queries read an immutable snapshot and never wait for a lock.
type Server struct {
	log      zerolog.Logger
	zone     *zone
	cfg      Config      // as given to New or SetZone; guarded by setMu
	pool     *PoolAnswer // the last SetPool, nil before one; guarded by setMu
	poolKey  string      // the address set of pool, for serial changes
	opts     options
	identity string           // NSID and CHAOS TXT; "" when hidden
	cookies  *cookieSigner    // RFC 9018 server cookies
	rrl      *limiter         // nil when rate limiting is off
	now      func() time.Time // the clock for SOA serials; replaced in tests
	// clock is the query path's clock (cookie timestamps, rate limiting);
	// tests replace it before Run.
	clock func() time.Time
	// batchUDP selects recvmmsg/sendmmsg readers where they are built;
	// tests turn it off before Run to cover the plain reader.
	batchUDP bool

	// queries counts answered queries (QueryStats).
	queries queryCounters

	// snap is the current state; queries only Load it.
	snap atomic.Pointer[snapshot]

	// setMu serializes SetServing's load-compute-store of snap, so that
	// two concurrent changes cannot publish the same serial.
	setMu sync.Mutex

	tcpBufs  sync.Pool // *tcpBuffers
	conns    connSet
	stopping chan struct{} // closed when Run begins to shut down

	// mu guards the listener lifecycle below.
	mu       sync.Mutex
	bindings []*binding // bound by Listen, one per address
	running  bool       // Run has been called
}

// New validates cfg, builds the zone and returns a Server in the WITHDRAWN
// state whose SOA serial is the current Unix time in seconds. The logger is
// narrowed with component=dnsserve. Errors name the offending Config field.
func New(logger zerolog.Logger, cfg Config) (*Server, error) {
	z, err := buildZone(cfg)
	if err != nil {
		return nil, err
	}
	opts, err := resolveOptions(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:      logger.With().Str("component", "dnsserve").Str("zone", z.origin).Logger(),
		zone:     z,
		cfg:      cfg,
		opts:     opts,
		identity: opts.identity,
		cookies:  newCookieSigner(opts.cookieSecret),
		now:      time.Now,
		clock:    time.Now,
		batchUDP: udpBatchSupported,
		stopping: make(chan struct{}),
	}
	s.rrl = newLimiter(opts.rrl, time.Now())
	s.conns = connSet{max: opts.tcpMaxConns, conns: make(map[*tcpConn]struct{})}
	s.tcpBufs.New = func() any { return new(tcpBuffers) }
	s.snap.Store(newSnapshot(z, false, uint32(s.now().Unix())))
	return s, nil
}

// SetServing publishes a new snapshot in which the site is SERVING (true) or
// WITHDRAWN (false), with every answer precomputed in wire format. It is
// safe from any goroutine and cheap to repeat: if the state is unchanged
// nothing happens. On a change the SOA serial becomes the larger of the
// previous serial plus one and the current Unix time in seconds (RFC 1982
// serial arithmetic), so caches and monitors see it move. Logging the
// change is the caller's job.
func (s *Server) SetServing(serving bool) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	old := s.snap.Load()
	if old.serving == serving {
		return
	}
	s.snap.Store(newSnapshot(s.zone, serving, nextSerial(old.serial, s.now().Unix())))
}

// Serving reports whether the current snapshot is SERVING.
func (s *Server) Serving() bool { return s.snap.Load().serving }

// Serial returns the SOA serial (RFC 1035 section 3.3.13) of the current
// snapshot.
func (s *Server) Serial() uint32 { return s.snap.Load().serial }

// RRLStats returns the response rate limiting counters since New; all zero
// when rate limiting is off.
func (s *Server) RRLStats() RRLStats {
	if s.rrl == nil {
		return RRLStats{}
	}
	return s.rrl.stats()
}

// Listen binds every "host:port" in addrs on UDP (Config.UDPSockets sockets
// sharing the address with SO_REUSEPORT) and TCP. With port 0 the TCP
// socket first tries the port the UDP sockets got, then any free port. It
// may be called once, before Run. On error nothing stays bound and the
// error names the address. Run releases the sockets; to release them
// without serving, call Run with an already cancelled context.
func (s *Server) Listen(addrs []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bindings != nil || s.running {
		return errors.New("dnsserve: Listen called twice or after Run")
	}
	if len(addrs) == 0 {
		return errors.New("dnsserve: no listen address")
	}
	var bs []*binding
	for _, addr := range addrs {
		b, err := s.bind(addr)
		if err != nil {
			for _, b := range bs {
				b.close()
			}
			return fmt.Errorf("dnsserve: listen %s: %w", addr, err)
		}
		bs = append(bs, b)
	}
	s.bindings = bs
	return nil
}

// Addrs returns the bound UDP and TCP addresses, one of each per address
// given to Listen and in that order; both are empty before Listen.
func (s *Server) Addrs() (udp, tcp []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bindings {
		udp = append(udp, b.udp[0].LocalAddr())
		tcp = append(tcp, b.tcp.Addr())
	}
	return udp, tcp
}

// Run serves on every socket bound by Listen until ctx is cancelled or a
// socket fails, then closes them all, gives TCP replies being written up to
// shutdownTimeout, and returns once every goroutine it started has exited.
// It returns nil after a cancel and the first socket error otherwise. It
// may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.bindings == nil {
		s.mu.Unlock()
		return errors.New("dnsserve: Run called twice or before Listen")
	}
	s.running = true
	bs := s.bindings
	s.mu.Unlock()

	failed := make(chan error, 1)
	fail := func(err error) {
		if err != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}
	var servers, conns sync.WaitGroup
	for _, b := range bs {
		for _, c := range b.udp {
			if s.batchUDP {
				servers.Go(func() { fail(s.serveUDPBatch(c)) })
			} else {
				servers.Go(func() { fail(s.serveUDP(c)) })
			}
		}
		servers.Go(func() { fail(s.serveTCP(b.tcp, &conns)) })
		s.log.Info().Stringer("udp", b.udp[0].LocalAddr()).Int("udp_sockets", len(b.udp)).
			Stringer("tcp", b.tcp.Addr()).Msg("dns listener started")
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
	}

	close(s.stopping)
	for _, b := range bs {
		b.close()
	}
	servers.Wait() // no new connections after this
	s.conns.closeAll()
	done := make(chan struct{})
	go func() { conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		s.log.Warn().Int("connections", s.conns.count()).Msg("tcp replies still being written at shutdown")
		<-done // bounded by writeTimeout
	}
	s.log.Info().Msg("dns listeners stopped")
	return err
}
