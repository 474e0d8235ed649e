// Package listener owns one server's listening socket across its whole
// life: binding it before the server runs, serving it, and moving it to a
// new address on a configuration reload (bind the new one, serve it, then
// close the old one), with the same Prepare/Apply shape as every other
// component. The agent, control and metrics servers each keep one Slot;
// what they do with an accepted connection is theirs. The DNS server binds
// several sockets per address and moves them itself (internal/dnsserve).
package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// BindFunc binds addr and returns the listener (a "host:port" for TCP, a
// path for a unix socket).
type BindFunc func(addr string) (net.Listener, error)

// ServeFunc accepts connections on ln until ln is closed, then returns nil
// (or an error if accepting fails for another reason). Connections it
// started may still be running when it returns; the server waits for them.
type ServeFunc func(ctx context.Context, ln net.Listener) error

// Slot holds a server's current listener ("" address: none) and moves it.
// Its methods are safe for concurrent use.
type Slot struct {
	key  string // the configuration key of the address, for logs
	log  zerolog.Logger
	bind BindFunc

	mu   sync.Mutex
	addr string        // the address in force
	ln   net.Listener  // its listener; nil when addr is "" or not bound yet
	done chan struct{} // closed when ln's serve loop has returned; nil when none
	// start serves a listener on Run's goroutine group; nil unless Run is
	// running.
	start   func(ln net.Listener) chan struct{}
	stopped bool // Run has returned
}

// New returns a Slot that binds with bind. key names the configuration key
// of its address ("agent.listen") in log lines. It binds nothing.
func New(key string, logger zerolog.Logger, bind BindFunc) *Slot {
	return &Slot{key: key, log: logger, bind: bind}
}

// TCP is a BindFunc for "host:port" TCP addresses.
func TCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// Bind binds addr ("" for none) as the slot's listener. It may be called
// once, before Run; the error names the address.
func (s *Slot) Bind(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.start != nil || s.stopped {
		return errors.New("listener: Bind called twice or after Run")
	}
	if addr == "" {
		return nil
	}
	ln, err := s.bind(addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	s.addr, s.ln = addr, ln
	return nil
}

// Close releases the listener of a slot that never ran (Run closes it
// otherwise). It is safe to call more than once and after Run.
func (s *Slot) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil || s.start != nil {
		return nil
	}
	err := s.ln.Close()
	s.ln = nil
	return err
}

// Addr returns the bound address, or nil when the slot has no listener.
func (s *Slot) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Run serves the slot's listener, and every listener a later Apply moves
// in, with serve, until ctx is done or a serve loop fails; then it closes
// the listener in force and returns once every serve loop has returned. It
// returns nil after ctx is done, else the first serve error. It may be
// called once.
func (s *Slot) Run(ctx context.Context, serve ServeFunc) error {
	var wg sync.WaitGroup
	failed := make(chan error, 1)
	s.mu.Lock()
	if s.start != nil || s.stopped {
		s.mu.Unlock()
		return errors.New("listener: Run called twice")
	}
	s.start = func(ln net.Listener) chan struct{} {
		done := make(chan struct{})
		wg.Go(func() {
			defer close(done)
			if err := serve(ctx, ln); err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		})
		return done
	}
	if s.ln != nil {
		s.done = s.start(s.ln)
	}
	s.mu.Unlock()

	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
	}
	s.mu.Lock()
	s.stopped, s.start = true, nil
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	s.mu.Unlock()
	wg.Wait()
	return err
}

// Move is a prepared change of the slot's address, from Prepare. Apply puts
// it in force; Discard abandons it.
type Move struct {
	s        *Slot
	from, to string
	ln       net.Listener // bound for to; nil when to is ""
	// early is true when the old listener was closed by Prepare because
	// the new address needs its port (see Prepare).
	early bool
	used  bool
}

// Prepare binds addr ("" for none) for a later Apply and changes nothing
// else; an unchanged address gives a nil Move (Apply and Discard accept
// nil). One case cannot bind first: an address that overlaps the one in
// force on the same port (0.0.0.0:5555 narrowed to 127.0.0.1:5555, or the
// reverse) is refused by the kernel while the old listener is open, so
// Prepare closes the old one first (its serve loop is waited for) and
// binds again; Discard then binds the old address again. On error nothing
// has changed and the error names the address.
func (s *Slot) Prepare(addr string) (*Move, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr == s.addr {
		return nil, nil
	}
	m := &Move{s: s, from: s.addr, to: addr}
	if addr == "" {
		return m, nil
	}
	ln, err := s.bind(addr)
	if err != nil && s.ln != nil && samePort(err, s.addr, addr) {
		s.log.Warn().Str("old", s.addr).Str("new", addr).Msg(s.key + " overlaps the old address on the same port: closing the old listener first")
		s.closeCurrentLocked()
		m.early = true
		if ln, err = s.bind(addr); err != nil {
			s.rebindLocked(m.from)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	m.ln = ln
	return m, nil
}

// Apply puts m in force: the new listener is served and then the old one is
// closed, after its serve loop has returned. After Run has returned the new
// listener is closed at once.
func (s *Slot) Apply(m *Move) {
	if m == nil || m.used {
		return
	}
	m.used = true
	s.mu.Lock()
	oldLn, oldDone := s.ln, s.done
	if m.early {
		oldLn, oldDone = nil, nil
	}
	s.addr, s.ln, s.done = m.to, m.ln, nil
	switch {
	case s.stopped && m.ln != nil:
		m.ln.Close()
		s.ln = nil
	case s.start != nil && m.ln != nil:
		s.done = s.start(m.ln)
	}
	s.mu.Unlock()
	if oldLn != nil {
		oldLn.Close()
		if oldDone != nil {
			<-oldDone
		}
	}
}

// Discard abandons m: it closes what Prepare bound and, when Prepare
// closed the old listener early, binds and serves the old address again (a
// failure to do so is returned: the server then has no listener until the
// next successful reload).
func (m *Move) Discard() error {
	if m == nil || m.used {
		return nil
	}
	m.used = true
	if m.ln != nil {
		m.ln.Close()
	}
	if !m.early {
		return nil
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	return m.s.rebindLocked(m.from)
}

// closeCurrentLocked closes the listener in force and waits for its serve
// loop, so that its port is free. s.mu is held; the serve loop does not
// take it.
func (s *Slot) closeCurrentLocked() {
	if s.ln == nil {
		return
	}
	s.ln.Close()
	if s.done != nil {
		<-s.done
	}
	s.ln, s.done = nil, nil
}

// rebindLocked binds addr again as the listener in force and serves it if
// Run runs. s.mu is held.
func (s *Slot) rebindLocked(addr string) error {
	ln, err := s.bind(addr)
	if err != nil {
		return fmt.Errorf("listen %s again: %w", addr, err)
	}
	s.ln = ln
	if s.start != nil {
		s.done = s.start(ln)
	} else if s.stopped {
		ln.Close()
		s.ln = nil
	}
	return nil
}

// samePort reports whether a failed bind of newAddr is the kernel refusing
// an address that overlaps oldAddr, still bound, on the same port: such a
// move cannot bind the new address first. Port 0 never conflicts.
func samePort(err error, oldAddr, newAddr string) bool {
	_, op, err1 := net.SplitHostPort(oldAddr)
	_, np, err2 := net.SplitHostPort(newAddr)
	p, err3 := strconv.Atoi(op)
	return errors.Is(err, syscall.EADDRINUSE) && err1 == nil && err2 == nil && err3 == nil && op == np && p != 0
}

// Accept returns the next connection on ln. An error other than ln's
// closing (out of file descriptors and the like) does not end the serve
// loop: it is logged at warn level with msg and retried after a back-off
// that doubles from 5 ms up to 1 s, so the server neither spins nor stops
// while descriptors are short. It returns an error wrapping net.ErrClosed
// once ln is closed or stop is closed during a back-off; that is the only
// error it returns.
func Accept(ln net.Listener, stop <-chan struct{}, logger zerolog.Logger, msg string) (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			return c, nil
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		logger.Warn().Err(err).Dur("retry_in", backoff).Msg(msg)
		t := time.NewTimer(backoff)
		select {
		case <-stop:
			t.Stop()
			return nil, fmt.Errorf("%s: stopping: %w", msg, net.ErrClosed)
		case <-t.C:
		}
	}
}
