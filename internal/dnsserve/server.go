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
	log  zerolog.Logger
	zone *zone
	now  func() time.Time // the clock for SOA serials; replaced in tests

	// snap is the current state; ServeDNS only Loads it.
	snap atomic.Pointer[snapshot]

	// setMu serializes SetServing's load-compute-store of snap, so that
	// two concurrent changes cannot publish the same serial.
	setMu sync.Mutex

	// mu guards the listener lifecycle below.
	mu      sync.Mutex
	lns     []*listener // bound by Listen, UDP and TCP alternating per address
	running bool        // Run has been called
}

// New validates cfg, builds the zone and returns a Server in the WITHDRAWN
// state whose SOA serial is the current Unix time in seconds. The logger is
// narrowed with component=dnsserve. Errors name the offending Config field.
func New(logger zerolog.Logger, cfg Config) (*Server, error) {
	z, err := buildZone(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log:  logger.With().Str("component", "dnsserve").Str("zone", z.origin).Logger(),
		zone: z,
		now:  time.Now,
	}
	s.snap.Store(newSnapshot(z, false, uint32(s.now().Unix())))
	return s, nil
}

// SetServing publishes a new snapshot in which the site is SERVING (true) or
// WITHDRAWN (false). It is safe from any goroutine and cheap to repeat: if
// the state is unchanged nothing happens. On a change the SOA serial becomes
// the larger of the previous serial plus one and the current Unix time in
// seconds (RFC 1982 serial arithmetic), so caches and monitors see it move.
// Logging the change is the caller's job.
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

// Listen binds every "host:port" in addrs on both UDP and TCP. With port 0
// the TCP socket first tries the port the UDP socket got, then any free
// port. It may be called once, before Run. On error nothing stays bound and
// the error names the address. Run releases the sockets; to release them
// without serving, call Run with an already cancelled context.
func (s *Server) Listen(addrs []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lns != nil || s.running {
		return errors.New("dnsserve: Listen called twice or after Run")
	}
	if len(addrs) == 0 {
		return errors.New("dnsserve: no listen address")
	}
	var lns []*listener
	for _, addr := range addrs {
		u, t, err := s.listenPair(addr)
		if err != nil {
			for _, l := range lns {
				l.close()
			}
			return fmt.Errorf("dnsserve: listen %s: %w", addr, err)
		}
		lns = append(lns, u, t)
	}
	s.lns = lns
	return nil
}

// Addrs returns the bound UDP and TCP addresses, in the order given to
// Listen; both are empty before Listen.
func (s *Server) Addrs() (udp, tcp []net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lns {
		if l.pc != nil {
			udp = append(udp, l.addr)
		} else {
			tcp = append(tcp, l.addr)
		}
	}
	return udp, tcp
}

// Run serves on every listener bound by Listen until ctx is cancelled or a
// listener fails, then shuts all of them down within shutdownTimeout and
// returns once every goroutine it started has exited. It returns nil after a
// cancel and the first listener error otherwise. It may be called once, and
// closes the listeners when it returns.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.lns == nil {
		s.mu.Unlock()
		return errors.New("dnsserve: Run called twice or before Listen")
	}
	s.running = true
	lns := s.lns
	s.mu.Unlock()

	failed := make(chan error, len(lns))
	var wg sync.WaitGroup
	for _, l := range lns {
		wg.Go(func() { l.serve(failed) })
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
	}

	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, l := range lns {
		wg.Go(func() { l.shutdown(sctx) })
	}
	wg.Wait()
	return err
}
