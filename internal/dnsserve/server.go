package dnsserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Server is the authoritative server of one zone. Build it with New, bind it
// with Listen, serve with Run, and flip its state with SetServing from any
// goroutine. Queries read an immutable snapshot and never wait for a lock.
type Server struct {
	log     zerolog.Logger
	zone    *zone
	cfg     Config      // as given to New or SetZone; guarded by setMu
	pool    *PoolAnswer // the last SetPool, nil before one; guarded by setMu
	poolKey string      // the address set of pool, for serial changes
	// opts are the options as resolved by New; the socket options among
	// them (udpSockets) stay, the others are in live.
	opts options
	// live are the options SetOptions may replace; the query path loads
	// them once per query.
	live atomic.Pointer[liveOptions]
	// rrlBase adds up the counters of limiters replaced by SetOptions, so
	// that RRLStats only grows; guarded by setMu.
	rrlBase RRLStats
	now     func() time.Time // the clock for SOA serials; replaced in tests
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
	bindings []*binding // bound by Listen or SetListen, one per address
	running  bool       // Run has been called
	stopped  bool       // Run has begun to shut down
	// serve starts the readers of a binding; set by Run while it runs.
	serve func(*binding)
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
		now:      time.Now,
		clock:    time.Now,
		batchUDP: udpBatchSupported,
		stopping: make(chan struct{}),
	}
	s.live.Store(&liveOptions{opts: opts, cookieFile: cfg.CookieSecretFile, cookies: newCookieSigner(opts.cookieSecret), rrl: newLimiter(opts.rrl, time.Now())})
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

// RRLStats returns the response rate limiting counters since New, across
// SetOptions; all zero while rate limiting has been off.
func (s *Server) RRLStats() RRLStats {
	// Under setMu, so that a SetOptions cannot retire the limiter between
	// reading the base and reading it.
	s.setMu.Lock()
	defer s.setMu.Unlock()
	st := s.rrlBase
	if l := s.live.Load().rrl; l != nil {
		st = st.add(l.stats())
	}
	return st
}

// Listen binds every "host:port" in addrs on UDP (Config.UDPSockets sockets
// sharing the address with SO_REUSEPORT) and TCP. With port 0 the TCP
// socket first tries the port the UDP sockets got, then any free port. It
// may be called once, before Run; SetListen changes the addresses of a
// running server. On error nothing stays bound and the
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
	bs, _, _, err := s.bindAllTakingOver(addrs, nil, nil)
	if err != nil {
		return err
	}
	s.bindings = bs
	return nil
}

// SetListen changes the served addresses to addrs, as a configuration
// reload asks: it binds every address not bound yet and starts answering on
// it, and only then closes the sockets of the addresses no longer listed,
// so the zone never goes unanswered on an address that stays. An address
// listed before and now (the same "host:port" string) keeps its sockets and
// the queries queued on them. One case cannot bind first: a new address
// that overlaps a dropped one on the same port (0.0.0.0:53 narrowed to
// 192.0.2.10:53, or the reverse) is refused by the kernel while the old
// socket is open, so that old one is closed first and the new one bound at
// once after it (logged; queries in that gap of a few system calls go
// unanswered). TCP connections accepted on a closed address finish as
// usual (idle and query timeouts). On error nothing changes (an address
// closed early is bound again) and the error names the address. Before Run
// it replaces what Listen bound; once Run has begun to shut down it fails.
func (s *Server) SetListen(addrs []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("dnsserve: SetListen after shutdown began")
	}
	if len(addrs) == 0 {
		return errors.New("dnsserve: no listen address")
	}
	have := make(map[string][]*binding, len(s.bindings))
	for _, b := range s.bindings {
		have[b.addr] = append(have[b.addr], b)
	}
	// The bindings that no address of addrs keeps, which
	// bindAllTakingOver may close early.
	var dropped []*binding
	keep := make(map[string]int, len(addrs))
	for _, a := range addrs {
		keep[a]++
	}
	for _, b := range s.bindings {
		if keep[b.addr] > 0 {
			keep[b.addr]--
		} else {
			dropped = append(dropped, b)
		}
	}
	next, fresh, early, err := s.bindAllTakingOver(addrs, have, dropped)
	if err != nil {
		s.restore(early)
		return err
	}
	if s.running {
		for _, b := range fresh {
			s.serve(b)
		}
	}
	for _, b := range dropped {
		b.close() // a second close of an early one is harmless
		s.log.Info().Str("addr", b.addr).Stringer("udp", b.udp[0].LocalAddr()).Msg("dns listener closed")
	}
	s.bindings = next
	return nil
}

// bindAllTakingOver returns a binding for every address of addrs, reusing
// those of have (by address string, each at most once: "127.0.0.1:0" twice
// is two ports) and binding the others, which it also returns as fresh.
// When an address cannot be bound because a binding of dropped holds its
// port, it closes that one first and tries again; it returns the bindings
// so closed early, which the caller must restore if it fails. On error it
// closes the fresh ones and names the address.
func (s *Server) bindAllTakingOver(addrs []string, have map[string][]*binding, dropped []*binding) (all, fresh, early []*binding, err error) {
	for _, addr := range addrs {
		if bs := have[addr]; len(bs) > 0 {
			all, have[addr] = append(all, bs[0]), bs[1:]
			continue
		}
		b, berr := s.bind(addr)
		if berr != nil && errors.Is(berr, syscall.EADDRINUSE) {
			if old := samePort(dropped, addr, early); old != nil {
				s.log.Warn().Str("old", old.addr).Str("new", addr).
					Msg("dns listener: the new address overlaps the old one on the same port; closing the old one first")
				old.closeAndWait()
				early = append(early, old)
				b, berr = s.bind(addr)
			}
		}
		if berr != nil {
			err = fmt.Errorf("dnsserve: listen %s: %w", addr, berr)
			break
		}
		all, fresh = append(all, b), append(fresh, b)
	}
	if err != nil {
		for _, b := range fresh {
			b.close()
		}
		return nil, nil, early, err
	}
	return all, fresh, early, nil
}

// samePort returns the first binding of dropped, not yet in closed, whose
// port is addr's (never for port 0), or nil.
func samePort(dropped []*binding, addr string, closed []*binding) *binding {
	_, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port == 0 {
		return nil
	}
	for _, b := range dropped {
		if b.udp[0].LocalAddr().(*net.UDPAddr).Port == port && !slices.Contains(closed, b) {
			return b
		}
	}
	return nil
}

// restore binds again the addresses of bindings closed early by a
// SetListen that then failed, serving them if Run runs, and puts the new
// sockets in their place in s.bindings. An address that cannot be bound
// again is logged: it is lost until the next successful SetListen.
func (s *Server) restore(early []*binding) {
	for _, old := range early {
		// The ports it had, not new ones for a "host:0" address.
		b, err := s.bindTCPAt(old.udp[0].LocalAddr().String(), old.tcp.Addr().String())
		if err != nil {
			s.log.Error().Err(err).Str("addr", old.addr).Msg("dns listener: cannot bind the old address again after a failed move")
			s.bindings = slices.DeleteFunc(s.bindings, func(x *binding) bool { return x == old })
			continue
		}
		b.addr = old.addr
		if s.running {
			s.serve(b)
		}
		s.bindings[slices.Index(s.bindings, old)] = b
	}
}

// Addrs returns the bound UDP and TCP addresses, one of each per address
// given to Listen (or to the latest SetListen) and in that order; both are
// empty before Listen.
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
	// s.serve is called with s.mu held and never once s.stopped is set, so
	// no reader starts after servers.Wait begins.
	s.serve = func(b *binding) {
		start := func(fn func() error) {
			b.readers.Add(1)
			servers.Go(func() {
				defer b.readers.Done()
				fail(fn())
			})
		}
		for _, c := range b.udp {
			if s.batchUDP {
				start(func() error { return s.serveUDPBatch(c) })
			} else {
				start(func() error { return s.serveUDP(c) })
			}
		}
		start(func() error { return s.serveTCP(b.tcp, &conns) })
		s.log.Info().Stringer("udp", b.udp[0].LocalAddr()).Int("udp_sockets", len(b.udp)).
			Stringer("tcp", b.tcp.Addr()).Msg("dns listener started")
	}
	for _, b := range s.bindings {
		s.serve(b)
	}
	s.mu.Unlock()

	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
	}

	close(s.stopping)
	s.mu.Lock()
	s.stopped = true
	for _, b := range s.bindings {
		b.close()
	}
	s.mu.Unlock()
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
