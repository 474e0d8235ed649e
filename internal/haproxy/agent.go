package haproxy

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/listener"
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

// MaxAgentConns is the number of agent connections kept open at once. When a
// new connection arrives at the limit, the OLDEST open connection is cut, not
// the new one: HAProxy sends its agent-send line the moment it connects and
// is answered within a millisecond, so the connections that linger are idle
// or abusive ones, and a flood of them can never lock HAProxy's checks out.
// A cut connection gets no reply; HAProxy 2.6 then keeps the server as it is
// (configuration manual §5.2 "agent-check"; verified for a refused
// connection).
const MaxAgentConns = 256

// AgentConfig is what the agent server needs from the configuration.
type AgentConfig struct {
	// Listen is the TCP "host:port" HAProxy's agent-check connects to
	// (agent.listen; port 0 picks one).
	Listen string
	// ReadTimeout bounds reading the request and writing the reply on one
	// connection (agent.read_timeout); 0 means DefaultAgentReadTimeout.
	// Keep it below the servers' agent-inter.
	ReadTimeout time.Duration
}

// AgentServer answers HAProxy agent checks (configuration manual §5.2
// "agent-check", "agent-send", "agent-inter") over TCP: per connection it
// reads one request line, such as "api/s1\n" (the server's agent-send must
// end in "\n"), writes one reply line and closes. Requests it cannot parse
// get AgentNoChange. Its lifecycle is the daemon's: NewAgentServer binds
// nothing, Bind binds (Close releases a listener Run never served), Run
// serves and waits for its connections, Prepare and Apply reload.
type AgentServer struct {
	logger      zerolog.Logger
	reply       ReplyFunc
	slot        *listener.Slot
	listen      string       // AgentConfig.Listen as bound or last applied
	readTimeout atomic.Int64 // nanoseconds; Apply changes it
	// sem holds one token per connection goroutine, including cut ones
	// still exiting: at most 2*MaxAgentConns, which bounds memory.
	sem chan struct{}
	wg  sync.WaitGroup // connection goroutines

	mu sync.Mutex
	// open lists the connections being served, oldest first; guarded by
	// mu. A connection cut to make room is removed from it.
	open    list.List
	maxOpen int       // MaxAgentConns; tests lower it
	cut     int       // connections cut since lastLog; guarded by mu
	lastLog time.Time // of the last "cut" warning; guarded by mu
}

// NewAgentServer returns an AgentServer for cfg that answers with reply. It
// binds nothing.
func NewAgentServer(logger zerolog.Logger, reply ReplyFunc, cfg AgentConfig) *AgentServer {
	logger = logger.With().Str("component", "agent").Logger()
	a := &AgentServer{
		logger:  logger,
		reply:   reply,
		slot:    listener.New("agent.listen", logger, listener.TCP),
		listen:  cfg.Listen,
		sem:     make(chan struct{}, 2*MaxAgentConns),
		maxOpen: MaxAgentConns,
	}
	a.readTimeout.Store(int64(readTimeoutOf(cfg)))
	return a
}

func readTimeoutOf(cfg AgentConfig) time.Duration {
	if cfg.ReadTimeout <= 0 {
		return DefaultAgentReadTimeout
	}
	return cfg.ReadTimeout
}

// Bind opens the TCP listener on AgentConfig.Listen. The error names the
// address.
func (a *AgentServer) Bind() error {
	if err := a.slot.Bind(a.listen); err != nil {
		return fmt.Errorf("agent.listen: %w", err)
	}
	return nil
}

// Close releases the listener of a server that never ran.
func (a *AgentServer) Close() error { return a.slot.Close() }

// Addr returns the listening address, or nil before Bind.
func (a *AgentServer) Addr() net.Addr { return a.slot.Addr() }

// AgentPlan is a prepared reload of the agent server, from Prepare.
type AgentPlan struct {
	cfg  AgentConfig
	move *listener.Move
}

// Discard abandons the plan and releases what Prepare bound.
func (p *AgentPlan) Discard() error { return p.move.Discard() }

// Prepare readies cfg for Apply: a new Listen address is bound now (see
// listener.Slot.Prepare for the one case that closes the old listener
// first). On error nothing has changed; the error names the address.
func (a *AgentServer) Prepare(cfg AgentConfig) (*AgentPlan, error) {
	m, err := a.slot.Prepare(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("agent.listen: %w", err)
	}
	return &AgentPlan{cfg: cfg, move: m}, nil
}

// Apply puts a prepared configuration in force: new connections get the
// new read timeout (open ones keep theirs), and a moved listener serves
// before the old one closes. It cannot fail.
func (a *AgentServer) Apply(p *AgentPlan) {
	a.readTimeout.Store(int64(readTimeoutOf(p.cfg)))
	a.slot.Apply(p.move)
	if p.move != nil {
		a.logger.Info().Str("addr", p.cfg.Listen).Msg("agent listener moved")
	}
	a.listen = p.cfg.Listen
}

// Run serves connections until ctx is done, then closes the listener, cuts
// the connections still open and returns once all their goroutines have
// exited; it returns nil after ctx is done, or an error if accepting fails
// for good. Bind must be called first; Run is called once.
func (a *AgentServer) Run(ctx context.Context) error {
	a.logger.Info().Stringer("addr", a.Addr()).Msg("agent server listening")
	err := a.slot.Run(ctx, a.acceptLoop)
	a.wg.Wait()
	a.logger.Info().Msg("agent server stopped")
	return err
}

// acceptLoop accepts connections on ln until it is closed.
func (a *AgentServer) acceptLoop(ctx context.Context, ln net.Listener) error {
	for {
		conn, err := listener.Accept(ln, ctx.Done(), a.logger, "agent accept failed")
		if err != nil {
			return nil // closed
		}
		select {
		case a.sem <- struct{}{}:
		default: // cut connections have not exited yet: shed this one
			_ = conn.Close()
			continue
		}
		c := a.admit(conn)
		a.wg.Go(func() {
			defer func() { <-a.sem }()
			defer a.release(c)
			a.serve(ctx, c)
		})
	}
}

// agentConn is one open agent connection.
type agentConn struct {
	net.Conn
	elem *list.Element // in AgentServer.open; guarded by AgentServer.mu
	cut  atomic.Bool   // cut to make room: gets no reply
}

// admit records conn as open, cutting the oldest open connection when
// maxOpen are open already.
func (a *AgentServer) admit(conn net.Conn) *agentConn {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open.Len() >= a.maxOpen {
		oldest := a.open.Remove(a.open.Front()).(*agentConn)
		oldest.cut.Store(true)
		_ = oldest.SetDeadline(time.Unix(1, 0)) // its goroutine exits at once
		a.cut++
		if now := time.Now(); now.Sub(a.lastLog) >= time.Second {
			a.logger.Warn().Int("cut", a.cut).Int("max", a.maxOpen).Msg("agent connections at the limit: cutting the oldest")
			a.cut, a.lastLog = 0, now
		}
	}
	c := &agentConn{Conn: conn}
	c.elem = a.open.PushBack(c)
	return c
}

// release forgets a connection that has been served; for one that was cut,
// Remove does nothing (list.Remove checks membership).
func (a *AgentServer) release(c *agentConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.open.Remove(c.elem)
}

// serve answers one agent connection.
func (a *AgentServer) serve(ctx context.Context, conn *agentConn) {
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Duration(a.readTimeout.Load()))); err != nil {
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
	// A read that timed out used up the deadline: give the write its own,
	// unless the connection was cut to make room or the server is stopping.
	if conn.cut.Load() || ctx.Err() != nil {
		return
	}
	if err := conn.SetWriteDeadline(time.Now().Add(time.Duration(a.readTimeout.Load()))); err != nil || conn.cut.Load() {
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
