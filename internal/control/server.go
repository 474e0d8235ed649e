package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// FrontendSource reads the frontend's statistics under ctx's deadline; in
// the daemon it is (*haproxy.Runtime).ShowFrontend on a Runtime of its own.
type FrontendSource func(ctx context.Context) (haproxy.FrontendStats, error)

// Config is what the control server needs from the configuration.
type Config struct {
	// Socket is the unix socket path (control.socket); it is created with
	// mode 0600, so only the daemon's user (and root) may use it.
	Socket string
	// Site is the site's name and Mode the agent mode ("static" or
	// "adaptive"), for status.
	Site, Mode string
	// QuietPeriod is how long the frontend must show no new session and no
	// request before drain -wait returns (control.quiet_period).
	QuietPeriod time.Duration
	// PollInterval is the time between two reads of the frontend during a
	// drain -wait, and PollTimeout the deadline of each read.
	PollInterval, PollTimeout time.Duration
}

// requestTimeout bounds reading a request and writing a reply.
const requestTimeout = 5 * time.Second

// Server serves the control socket: drain, resume and status.
type Server struct {
	log    zerolog.Logger
	socket string // Config.Socket as given to New; SetConfig keeps it
	poller *site.Poller
	dns    func() bool
	// set holds the settings in force; SetConfig replaces them whole.
	set atomic.Pointer[settings]

	frontMu sync.Mutex // one frontend read at a time (haproxy.ErrBusy)

	mu sync.Mutex
	ln *net.UnixListener // set by Listen
}

// New returns a control server that drains and resumes through poller.
// frontend (nil when haproxy.frontend is not set) is read during drain
// -wait; dns (may be nil) reports whether the DNS server serves the zone.
func New(logger zerolog.Logger, cfg Config, poller *site.Poller, frontend FrontendSource, dns func() bool) *Server {
	s := &Server{
		log:    logger.With().Str("component", "control").Logger(),
		socket: cfg.Socket,
		poller: poller, dns: dns,
	}
	s.set.Store(&settings{cfg: cfg, frontend: frontend})
	return s
}

// settings are the parts of a Server that a reload may replace.
type settings struct {
	cfg      Config
	frontend FrontendSource // nil: no frontend configured
}

// SetConfig replaces the settings on a configuration reload: everything in
// cfg but Socket (the socket stays where Listen created it; a new path
// needs a new Server), and the frontend source (nil: none). A request in
// progress, such as a drain -wait, finishes with the settings it began
// with.
func (s *Server) SetConfig(cfg Config, frontend FrontendSource) {
	cfg.Socket = s.socket
	s.set.Store(&settings{cfg: cfg, frontend: frontend})
}

// Listen creates the control socket with mode 0600. The socket is bound
// under a temporary name, restricted, then renamed into place, so it is
// never reachable with wider permissions. A stale socket left by a dead
// daemon is replaced; a live one, or a file that is not a socket, is an
// error.
func (s *Server) Listen() error {
	path := s.socket
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return fmt.Errorf("control socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("control socket %s: another daemon is listening", path)
		}
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return fmt.Errorf("control listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return fmt.Errorf("control listen %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return fmt.Errorf("control listen %s: %w", path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln = ln
	return nil
}

// Run serves connections until ctx is done, then closes the socket, removes
// its file and returns once every connection's goroutine has exited. A
// drain -wait in progress is answered with an error at shutdown. Listen must
// be called first.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return errors.New("control run: not listening")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer os.Remove(s.socket)
	defer ln.Close()
	s.log.Info().Str("socket", s.socket).Msg("control socket listening")
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, conn)
		}()
	}
}

// serve answers one connection: one request, one response.
func (s *Server) serve(ctx context.Context, conn *net.UnixConn) {
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(requestTimeout)); err != nil {
		return
	}
	// At shutdown a client that has not sent its request yet is cut at
	// once, instead of holding Run for up to requestTimeout.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) }) //nolint:errcheck // ends the read
	defer stop()
	rd := bufio.NewReader(conn)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		s.log.Debug().Err(err).Msg("control request unreadable")
		return
	}
	var req Request
	var resp Response
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = fmt.Sprintf("bad request: %v", err)
	} else {
		// The client closing its end cancels a drain -wait.
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		conn.SetReadDeadline(time.Time{}) //nolint:errcheck // only ends the wait early
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			rd.ReadByte() //nolint:errcheck // any read result means the client is gone or misbehaving
			cancel()
		}()
		defer func() {
			conn.SetReadDeadline(time.Unix(1, 0)) //nolint:errcheck // ends the reader
			<-readerDone
		}()
		resp = s.handle(rctx, req)
	}
	b, _ := json.Marshal(resp) // plain types: cannot fail
	if err := conn.SetWriteDeadline(time.Now().Add(requestTimeout)); err != nil {
		return
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		s.log.Debug().Err(err).Str("cmd", req.Cmd).Msg("control reply not sent")
	}
}

// handle runs one request. It is the one place where a command's failure
// becomes Response.Error.
func (s *Server) handle(ctx context.Context, req Request) Response {
	var resp Response
	var err error
	set := s.set.Load()
	switch req.Cmd {
	case CmdStatus:
	case CmdDrain:
		if req.Wait > 0 && set.frontend == nil {
			err = errors.New("drain -wait needs haproxy.frontend in the configuration")
			break
		}
		var d site.Drain
		d, err = s.poller.Drain(ctx, req.Reason)
		s.log.Info().Str("reason", req.Reason).Strs("servers_drained", d.Servers).AnErr("error", err).Msg("site drained by operator")
		if err == nil && req.Wait > 0 {
			resp.Waited, err = s.waitQuiet(ctx, set, req.Wait)
		}
	case CmdResume:
		_, err = s.poller.Resume(ctx)
		s.log.Info().AnErr("error", err).Msg("site drain ended by operator")
	default:
		err = fmt.Errorf("unknown command %q", req.Cmd)
	}
	if err != nil {
		resp.Error = err.Error()
	}
	set = s.set.Load() // a reload may have come during a drain -wait
	resp.Status = StatusOf(set.cfg.Site, set.cfg.Mode, s.poller.Snapshot(), s.dns)
	return resp
}

// waitQuiet reads the frontend every PollInterval until it has been quiet
// for QuietPeriod (both from set), and fails once wait has passed or ctx is
// done.
func (s *Server) waitQuiet(ctx context.Context, set *settings, wait time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(set.cfg.PollInterval)
	defer tick.Stop()
	q := quietWatch{period: set.cfg.QuietPeriod}
	var last haproxy.FrontendStats
	var lastErr error
	for {
		last, lastErr = s.readFrontend(ctx, set)
		if q.observe(time.Now(), lastErr == nil && last.Quiet()) {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("drain -wait: site drained, stopped waiting: %w", ctx.Err())
		case <-deadline.C:
			why := fmt.Sprintf("frontend %s still busy: %d sessions/s, %d requests/s, %d sessions open", last.Frontend, last.Rate, last.ReqRate, last.Scur)
			if lastErr != nil {
				why = "frontend unreadable: " + lastErr.Error()
			}
			return time.Since(start), fmt.Errorf("drain -wait: site drained, but not quiet for %s within %s: %s", set.cfg.QuietPeriod, wait, why)
		case <-tick.C:
		}
	}
}

func (s *Server) readFrontend(ctx context.Context, set *settings) (haproxy.FrontendStats, error) {
	s.frontMu.Lock()
	defer s.frontMu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, set.cfg.PollTimeout)
	defer cancel()
	return set.frontend(rctx)
}
