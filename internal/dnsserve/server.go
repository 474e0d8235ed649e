package dnsserve

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Server is the authoritative server of one zone. Its lifecycle is the
// daemon's: New builds it and binds nothing, Bind binds Config.Listen
// (Close releases sockets Run never served), Run serves and returns once
// every goroutine it started has exited, Prepare and Apply reload. What the
// zone hands out is set with SetAnswers from any goroutine; it starts
// withdrawn. Queries read an immutable snapshot and never wait for a lock.
type Server struct {
	log  zerolog.Logger
	zone *zone // guarded by setMu
	// answers is the latest SetAnswers, answersKey its key (for serial
	// changes); guarded by setMu.
	answers    Answers
	answersKey string
	// opts are the options as resolved by New; the socket options among
	// them (udpSockets) stay, the others are in live.
	opts options
	// live are the options Apply may replace; the query path loads them
	// once per query.
	live atomic.Pointer[liveOptions]
	// rrlBase adds up the counters of limiters replaced by Apply, so that
	// RRLStats only grows; guarded by setMu.
	rrlBase RRLStats
	// clock is the one clock of the server: SOA serials, cookie timestamps
	// and rate limiting. Tests replace it before Run.
	clock func() time.Time
	// batchUDP selects recvmmsg/sendmmsg readers where they are built;
	// tests turn it off before Run to cover the plain reader.
	batchUDP bool

	// queries counts answered queries (QueryStats).
	queries queryCounters

	// signer signs the zone's snapshots (nil when unsigned) and
	// dnssecStats counts; resignWake tells the re-signing loop that a new
	// snapshot was published. signer is guarded by setMu.
	signer      *signer
	dnssecStats dnssecCounters
	resignWake  chan struct{}

	// snap is the current state; queries only Load it.
	snap atomic.Pointer[snapshot]

	// setMu serializes the changes of snap (SetAnswers, Apply), so that two
	// concurrent changes cannot publish the same serial.
	setMu sync.Mutex

	tcpBufs  sync.Pool // *tcpBuffers
	conns    connSet
	stopping chan struct{} // closed when Run begins to shut down

	// mu guards the listener lifecycle below.
	mu       sync.Mutex
	listen   []string   // Config.Listen in force
	bindings []*binding // bound by Bind or Apply, one per address
	running  bool       // Run has been called
	stopped  bool       // Run has begun to shut down
	// serve starts the readers of a binding; set by Run while it runs.
	serve func(*binding)
}

// New validates cfg, builds the zone and returns a withdrawn Server whose
// SOA serial is the current Unix time in seconds. It binds nothing. The
// logger is narrowed with component=dnsserve. Errors name the offending
// Config field.
func New(logger zerolog.Logger, cfg Config) (*Server, error) {
	z, err := buildZone(cfg)
	if err != nil {
		return nil, err
	}
	opts, err := resolveOptions(cfg)
	if err != nil {
		return nil, err
	}
	if len(cfg.Listen) == 0 {
		return nil, errors.New("config Listen: no address")
	}
	s := &Server{
		log:        logger.With().Str("component", "dnsserve").Str("zone", z.origin).Logger(),
		zone:       z,
		answers:    Answers{Refuse: true},
		opts:       opts,
		clock:      time.Now,
		batchUDP:   udpBatchSupported,
		stopping:   make(chan struct{}),
		listen:     slices.Clone(cfg.Listen),
		resignWake: make(chan struct{}, 1),
	}
	s.signer = newSigner(z.sign, &s.dnssecStats.signed)
	s.answersKey = s.answers.key()
	s.live.Store(&liveOptions{opts: opts, cookieFile: cfg.CookieSecretFile, cookies: newCookieSigner(opts.cookieSecret), rrl: newLimiter(opts.rrl, time.Now())})
	s.conns = connSet{max: opts.tcpMaxConns, conns: make(map[*tcpConn]struct{})}
	s.tcpBufs.New = func() any { return new(tcpBuffers) }
	s.snap.Store(newSnapshot(z, s.answers, uint32(s.clock().Unix())))
	return s, nil
}

// RRLStats returns the response rate limiting counters since New, across
// reloads; all zero while rate limiting has been off.
func (s *Server) RRLStats() RRLStats {
	// Under setMu, so that an Apply cannot retire the limiter between
	// reading the base and reading it.
	s.setMu.Lock()
	defer s.setMu.Unlock()
	st := s.rrlBase
	if l := s.live.Load().rrl; l != nil {
		st = st.add(l.stats())
	}
	return st
}

// Bind binds every "host:port" of Config.Listen on UDP (Config.UDPSockets
// sockets sharing the address with SO_REUSEPORT) and TCP. With port 0 the
// TCP socket first tries the port the UDP sockets got, then any free port.
// It may be called once, before Run. On error nothing stays bound and the
// error names the address.
func (s *Server) Bind() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bindings != nil || s.running {
		return errors.New("dnsserve: Bind called twice or after Run")
	}
	bs, _, _, err := s.bindAllTakingOver(s.listen, nil, nil)
	if err != nil {
		return err
	}
	s.bindings = bs
	return nil
}

// Close releases the sockets of a server that never ran; Run releases
// them otherwise. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	for _, b := range s.bindings {
		b.close()
	}
	s.bindings = nil
	return nil
}

// Addrs returns the bound UDP and TCP addresses, one of each per address
// of Config.Listen (of the latest Apply) and in that order; both are empty
// before Bind.
func (s *Server) Addrs() (udp, tcp []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bindings {
		udp = append(udp, b.udp[0].LocalAddr())
		tcp = append(tcp, b.tcp.Addr())
	}
	return udp, tcp
}

// Run serves on every socket bound by Bind (and moved in by Apply) until
// ctx is cancelled or a socket fails, then closes them all, gives TCP replies being written up to
// shutdownTimeout, and returns once every goroutine it started has exited.
// It returns nil after a cancel and the first socket error otherwise. It
// may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.bindings == nil {
		s.mu.Unlock()
		return errors.New("dnsserve: Run called twice or before Bind")
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
	var bg sync.WaitGroup
	bg.Go(func() { s.resignLoop(s.stopping) })
	defer bg.Wait()

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
