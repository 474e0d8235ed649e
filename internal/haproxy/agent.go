package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ReplyFunc returns the agent reply line, WITHOUT the trailing newline, for
// an agent-send request naming backend (may be "") and server: "api/s1"
// gives ("api", "s1"), "s1" gives ("", "s1"). See the Agent* constants for
// the grammar; return AgentNoChange for a server it does not know. It must
// be safe for concurrent use and quick: it runs once per agent check.
type ReplyFunc func(backend, server string) string

// DefaultAgentReadTimeout is the default time allowed for reading a request
// and writing the reply on one agent connection.
const DefaultAgentReadTimeout = time.Second

// MaxAgentConns is the number of agent connections served at once; further
// connections are closed at once. HAProxy 2.6 then keeps the server as it is:
// an agent that cannot be reached never changes a server (verified for a
// refused connection; configuration manual §5.2 "agent-check").
const MaxAgentConns = 256

// AgentServer answers HAProxy agent checks (configuration manual §5.2
// "agent-check", "agent-send", "agent-inter") over TCP: per connection it
// reads one request line, such as "api/s1\n" (the server's agent-send must
// end in "\n"), writes one reply line and closes. Requests it cannot parse
// get AgentNoChange.
type AgentServer struct {
	logger      zerolog.Logger
	reply       ReplyFunc
	readTimeout time.Duration
	// sem holds one token per connection being served.
	sem chan struct{}

	mu sync.Mutex
	ln net.Listener // set by Listen
}

// NewAgentServer returns an AgentServer that answers with reply. readTimeout
// bounds reading the request and writing the reply on each connection
// (DefaultAgentReadTimeout if 0); keep it below the server's agent-inter.
func NewAgentServer(logger zerolog.Logger, reply ReplyFunc, readTimeout time.Duration) *AgentServer {
	if readTimeout <= 0 {
		readTimeout = DefaultAgentReadTimeout
	}
	return &AgentServer{
		logger:      logger,
		reply:       reply,
		readTimeout: readTimeout,
		sem:         make(chan struct{}, MaxAgentConns),
	}
}

// Listen opens the TCP listener on addr (host:port; port 0 picks one).
func (a *AgentServer) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("agent listen %s: %w", addr, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln != nil {
		_ = ln.Close()
		return fmt.Errorf("agent listen %s: already listening on %s", addr, a.ln.Addr())
	}
	a.ln = ln
	return nil
}

// Addr returns the listening address, or nil before Listen.
func (a *AgentServer) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return nil
	}
	return a.ln.Addr()
}

// Run serves connections until ctx is done, then closes the listener, cuts
// the connections still open and returns once all their goroutines have
// exited; it returns nil after ctx is done, or an error if accepting fails
// for good. Listen must be called first; Run is called once.
func (a *AgentServer) Run(ctx context.Context) error {
	a.mu.Lock()
	ln := a.ln
	a.mu.Unlock()
	if ln == nil {
		return errors.New("agent run: not listening")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	defer ln.Close()

	a.logger.Info().Stringer("addr", ln.Addr()).Msg("agent server listening")
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				a.logger.Info().Msg("agent server stopped")
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("agent accept: %w", err)
			}
			// Out of file descriptors and the like: wait, then retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			a.logger.Warn().Err(err).Dur("retry_in", backoff).Msg("agent accept failed")
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			continue
		}
		backoff = 0
		select {
		case a.sem <- struct{}{}:
		default:
			a.logger.Warn().Stringer("remote", conn.RemoteAddr()).Int("max", cap(a.sem)).Msg("agent connection limit reached, closing")
			_ = conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-a.sem }()
			a.serve(ctx, conn)
		}()
	}
}

// serve answers one agent connection.
func (a *AgentServer) serve(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(a.readTimeout)); err != nil {
		return
	}
	// Cut the connection at once on shutdown. ctx.Err() is set before this
	// runs, so checking ctx after setting a deadline below is enough to
	// never extend a cut connection.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	log := a.logger.With().Stringer("remote", conn.RemoteAddr()).Logger()
	line, err := readAgentLine(conn)
	reply := AgentNoChange
	if err != nil {
		log.Debug().Err(err).Msg("agent request unreadable")
	} else {
		reply = a.answer(log, line)
	}
	// A read that timed out used up the deadline: give the write its own.
	if err := conn.SetWriteDeadline(time.Now().Add(a.readTimeout)); err != nil || ctx.Err() != nil {
		return
	}
	if _, err := io.WriteString(conn, reply+"\n"); err != nil {
		log.Debug().Err(err).Msg("agent reply not sent")
	}
}

// answer maps a request line to its reply. It is the one place where
// request errors and reply panics turn into AgentNoChange.
func (a *AgentServer) answer(log zerolog.Logger, line string) (reply string) {
	backend, server, err := ParseAgentRequest(line)
	if err != nil {
		log.Debug().Err(err).Msg("bad agent request")
		return AgentNoChange
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error().Str("backend", backend).Str("server", server).Interface("panic", p).Msg("agent reply panicked")
			reply = AgentNoChange
		}
	}()
	reply = a.reply(backend, server)
	// HAProxy reads only up to the first CR or LF.
	if i := strings.IndexAny(reply, "\r\n"); i >= 0 {
		reply = reply[:i]
	}
	log.Debug().Str("backend", backend).Str("server", server).Str("reply", reply).Msg("agent check")
	return reply
}

// readAgentLine reads up to and excluding the first '\n' (or to EOF), at
// most MaxAgentRequest+2 bytes; bytes after the line are ignored.
func readAgentLine(r io.Reader) (string, error) {
	buf := make([]byte, MaxAgentRequest+2) // the line, "\r", "\n"
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		if i := bytes.IndexByte(buf[n:n+m], '\n'); i >= 0 {
			return string(buf[:n+i]), nil
		}
		n += m
		if errors.Is(err, io.EOF) && n > 0 {
			return string(buf[:n]), nil
		}
		if err != nil {
			return "", fmt.Errorf("read agent request: %w", err)
		}
	}
	return "", fmt.Errorf("agent request longer than %d bytes", MaxAgentRequest)
}
