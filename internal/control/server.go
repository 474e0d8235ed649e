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
	"github.com/spdu/spdu-haproxy/internal/listener"
	"github.com/spdu/spdu-haproxy/internal/site"
	"github.com/spdu/spdu-haproxy/internal/status"
)

// FrontendSource returns the frontend's statistics as last read, or an
// error when they are not current; in the daemon, the row the poller read
// with its last poll (an error when that poll failed). It must not block.
type FrontendSource func() (haproxy.FrontendStats, error)

// Config is what the control server needs from the configuration.
type Config struct {
	// Socket is the unix socket path (control.socket); it is created with
	// mode 0600, so only the daemon's user (and root) may use it.
	Socket string
	// Frontend reads the frontend that drain -wait watches
	// (haproxy.frontend); nil when none is configured.
	Frontend FrontendSource
	// QuietPeriod is how long the frontend must show no new session and no
	// request before drain -wait returns (control.quiet_period).
	QuietPeriod time.Duration
	// PollInterval is the time between two reads of the frontend during a
	// drain -wait (haproxy.poll_interval: each read sees a new poll).
	PollInterval time.Duration
}

// requestTimeout bounds reading a request and writing a reply.
const requestTimeout = 5 * time.Second

// MaxConns is how many control connections are served at once (a drain
// -wait holds one until the frontend is quiet); more are closed at once.
const MaxConns = 16

// Server serves the control socket: drain, resume and status. Its
// lifecycle is the daemon's: New binds nothing, Bind creates the socket
// (Close removes it if Run never ran), Run serves and waits for its
// connections, Prepare and Apply reload.
type Server struct {
	log    zerolog.Logger
	slot   *listener.Slot
	poller *site.Poller
	status func() status.Document
	zone   func() string // see WithZone
	// cfg holds the settings in force; Apply replaces them whole.
	cfg atomic.Pointer[Config]
	wg  sync.WaitGroup // connection goroutines
	sem chan struct{}  // one token per connection served, MaxConns in all
}

// New returns a control server for cfg that drains and resumes through
// poller and answers status with the document doc returns. It binds
// nothing.
func New(logger zerolog.Logger, cfg Config, poller *site.Poller, doc func() status.Document) *Server {
	logger = logger.With().Str("component", "control").Logger()
	s := &Server{
		log:    logger,
		slot:   listener.New("control.socket", logger, bindUnix),
		sem:    make(chan struct{}, MaxConns),
		poller: poller, status: doc,
	}
	s.cfg.Store(&cfg)
	return s
}

// WithZone makes the command "zone" answer with what zone returns: the
// served zone in master-file format. Without it "zone" is an error. It must
// be called before Run.
func (s *Server) WithZone(zone func() string) *Server {
	s.zone = zone
	return s
}

// Bind creates the control socket with mode 0600 (see bindUnix).
func (s *Server) Bind() error {
	if err := s.slot.Bind(s.cfg.Load().Socket); err != nil {
		return fmt.Errorf("control.socket: %w", err)
	}
	return nil
}

// Close removes the socket of a server that never ran.
func (s *Server) Close() error { return s.slot.Close() }

// Plan is a prepared reload of the control server, from Prepare.
type Plan struct {
	cfg  Config
	move *listener.Move
}

// Discard abandons the plan and removes a socket Prepare created.
func (p *Plan) Discard() error { return p.move.Discard() }

// Prepare readies cfg for Apply: a new socket path is bound now. On error
// nothing has changed; the error names the path.
func (s *Server) Prepare(cfg Config) (*Plan, error) {
	m, err := s.slot.Prepare(cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("control.socket: %w", err)
	}
	return &Plan{cfg: cfg, move: m}, nil
}

// Apply puts a prepared configuration in force. A request in progress,
// such as a drain -wait, finishes with the settings it began with; a
// moved socket serves before the old one is closed and removed.
func (s *Server) Apply(p *Plan) {
	cfg := p.cfg
	s.cfg.Store(&cfg)
	s.slot.Apply(p.move)
}

// unixListener is a control socket whose Close also removes its file.
type unixListener struct {
	*net.UnixListener
	path string
}

// Close closes the socket and removes its file.
func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// bindUnix creates the control socket at path with mode 0600. The socket is
// bound under a temporary name, restricted, then renamed into place, so it
// is never reachable with wider permissions. A stale socket left by a dead
// daemon is replaced; a live one, or a file that is not a socket, is an
// error.
func bindUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another daemon is listening", path)
		}
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	return &unixListener{UnixListener: ln, path: path}, nil
}

// Run serves connections until ctx is done, then closes the socket, removes
// its file and returns once every connection's goroutine has exited. A
// drain -wait in progress is answered with an error at shutdown. Bind must
// be called first.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info().Str("socket", s.cfg.Load().Socket).Msg("control socket listening")
	err := s.slot.Run(ctx, func(ctx context.Context, ln net.Listener) error {
		for {
			conn, err := listener.Accept(ln, ctx.Done(), s.log, "control accept failed")
			if err != nil {
				return nil // closed
			}
			select {
			case s.sem <- struct{}{}:
			default: // MaxConns requests in progress: refuse this one
				conn.Close()
				continue
			}
			s.wg.Go(func() {
				defer func() { <-s.sem }()
				s.serve(ctx, conn.(*net.UnixConn))
			})
		}
	})
	s.wg.Wait()
	return err
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
	cfg := s.cfg.Load()
	switch req.Cmd {
	case CmdStatus:
	case CmdDrain:
		if req.Wait > 0 && cfg.Frontend == nil {
			err = errors.New("drain -wait needs haproxy.frontend in the configuration")
			break
		}
		var d site.Drain
		d, err = s.poller.Drain(ctx, req.Reason)
		s.log.Info().Str("reason", req.Reason).Strs("servers_drained", d.Servers).AnErr("error", err).Msg("site drained by operator")
		if err == nil && req.Wait > 0 {
			resp.Waited, err = s.waitQuiet(ctx, cfg, req.Wait)
		}
	case CmdResume:
		_, err = s.poller.Resume(ctx)
		s.log.Info().AnErr("error", err).Msg("site drain ended by operator")
	case CmdShed:
		var until time.Time
		if req.For > 0 {
			until = time.Now().Add(req.For)
		}
		_, err = s.poller.SetShed(ctx, req.Fraction, until, req.Reason)
		s.log.Info().Float64("fraction", req.Fraction).Dur("for", req.For).Str("reason", site.CleanReason(req.Reason)).AnErr("error", err).Msg("manual shed set by operator")
	case CmdZone:
		if s.zone == nil {
			err = errors.New("zone: not available")
			break
		}
		resp.Zone = s.zone()
	default:
		err = fmt.Errorf("unknown command %q", req.Cmd)
	}
	if err != nil {
		resp.Error = err.Error()
	}
	resp.Status = s.status()
	return resp
}

// waitQuiet reads the frontend every PollInterval until it has been quiet
// for QuietPeriod (both from set), and fails once wait has passed or ctx is
// done.
func (s *Server) waitQuiet(ctx context.Context, cfg *Config, wait time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(cfg.PollInterval)
	defer tick.Stop()
	q := quietWatch{period: cfg.QuietPeriod}
	var last haproxy.FrontendStats
	var lastErr error
	for {
		last, lastErr = cfg.Frontend()
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
			return time.Since(start), fmt.Errorf("drain -wait: site drained, but not quiet for %s within %s: %s", cfg.QuietPeriod, wait, why)
		case <-tick.C:
		}
	}
}
