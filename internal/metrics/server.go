package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"golang.org/x/net/netutil"
	"golang.org/x/time/rate"

	"github.com/spdu/spdu-haproxy/internal/listener"
	"github.com/spdu/spdu-haproxy/internal/status"
)

// Limits of the HTTP listener, so that no client can hold the daemon's
// file descriptors or CPU: whatever a scraper does, the runtime API poll,
// DNS and the agent keep theirs.
const (
	// MaxConns caps open connections; further clients wait in the kernel's
	// accept queue, holding no descriptor of ours.
	MaxConns = 64
	// MaxInFlight caps requests being answered at once; more get 503
	// Service Unavailable at once.
	MaxInFlight = 4
	// MaxRate and MaxBurst bound the requests answered per second over the
	// whole listener (a Prometheus scrape every few seconds and a peer's
	// status read every second need far less); a request over the rate
	// gets 429 Too Many Requests and its connection is closed, so a client
	// pipelining requests costs one reply, not thousands.
	MaxRate  = 50
	MaxBurst = 100
	// readHeaderTimeout, readTimeout and writeTimeout bound one request;
	// idleTimeout closes a keep-alive connection that sends nothing.
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 30 * time.Second
	maxHeaderBytes    = 8 << 10
	// shutdownTimeout bounds waiting for requests in progress at shutdown.
	shutdownTimeout = 2 * time.Second
)

// Server serves, on one TCP listener (metrics.listen), GET /metrics
// (Prometheus text format from the registry it was given), GET /status
// (the full status document, for the operator on the loopback listener)
// and GET /status/public (its public form, which the site's HAProxy
// publishes to peer sites). Its lifecycle is the daemon's: NewServer binds
// nothing, Bind binds (an empty address binds nothing: metrics off), Run
// serves and waits, Prepare and Apply move the listener (or turn it off and
// on).
type Server struct {
	log     zerolog.Logger
	slot    *listener.Slot
	listen  string // the address in force, "" when off
	handler http.Handler
}

// NewServer returns a Server for addr ("host:port", port 0 allowed; "" or
// "off": no listener) that serves reg and the documents doc returns.
func NewServer(logger zerolog.Logger, addr string, reg *prometheus.Registry, doc func() status.Document) *Server {
	logger = logger.With().Str("component", "metrics").Logger()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reuseFor(time.Second, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: httpErrorLog(logger)})))
	writeDoc := func(w http.ResponseWriter, d status.Document) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(d) //nolint:errcheck // the client went away
	}
	mux.Handle("GET /status", reuseFor(100*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeDoc(w, doc()) })))
	mux.Handle("GET /status/public", reuseFor(100*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeDoc(w, doc().Public()) })))
	return &Server{
		log:     logger,
		slot:    listener.New("metrics.listen", logger, listener.TCP),
		listen:  listenAddr(addr),
		handler: limitRate(rate.NewLimiter(MaxRate, MaxBurst), limitInFlight(mux, MaxInFlight)),
	}
}

// listenAddr maps metrics.listen's "off" to no address.
func listenAddr(addr string) string {
	if addr == "off" {
		return ""
	}
	return addr
}

// reuseFor serves h's response again, for the same Accept and
// Accept-Encoding headers (promhttp picks the format by the one and gzip by
// the other), for up to ttl after it was made: however many clients ask, the registry is
// gathered and the status document built at most once per ttl, so a flood
// of requests costs little more than writing bytes.
func reuseFor(ttl time.Duration, h http.Handler) http.Handler {
	type entry struct {
		at     time.Time
		status int
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	cache := map[string]*entry{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Accept") + "\n" + r.Header.Get("Accept-Encoding")
		mu.Lock()
		e := cache[key]
		if e == nil || time.Since(e.at) > ttl {
			rec := &recorder{header: http.Header{}, status: http.StatusOK}
			h.ServeHTTP(rec, r)
			e = &entry{at: time.Now(), status: rec.status, header: rec.header, body: rec.body.Bytes()}
			if len(cache) > 16 { // these headers vary little; bound the map
				clear(cache)
			}
			cache[key] = e
		}
		mu.Unlock()
		maps.Copy(w.Header(), e.header)
		w.WriteHeader(e.status)
		w.Write(e.body) //nolint:errcheck // the client went away
	})
}

// recorder is an http.ResponseWriter that keeps the response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// limitRate answers 429 and closes the connection when a request arrives
// over lim's rate.
func limitRate(lim *rate.Limiter, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !lim.Allow() {
			w.Header().Set("Connection", "close")
			http.Error(w, "too many requests", http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// limitInFlight answers 503 to a request that arrives while max are being
// answered.
func limitInFlight(h http.Handler, max int) http.Handler {
	sem := make(chan struct{}, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			h.ServeHTTP(w, r)
		default:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	})
}

// httpErrorLog routes net/http's own error messages (TLS handshake and
// accept errors, handler panics) into the JSON log at warn level.
func httpErrorLog(logger zerolog.Logger) *log.Logger {
	return log.New(zerologWriter{logger}, "", 0)
}

type zerologWriter struct{ l zerolog.Logger }

func (z zerologWriter) Write(p []byte) (int, error) {
	z.l.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Bind binds the listener (nothing when metrics are off). The error names
// the address.
func (s *Server) Bind() error {
	if err := s.slot.Bind(s.listen); err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	return nil
}

// Close releases the listener of a server that never ran.
func (s *Server) Close() error { return s.slot.Close() }

// Addr returns the bound address, or nil when there is none.
func (s *Server) Addr() net.Addr { return s.slot.Addr() }

// Move is a prepared change of metrics.listen, from Prepare.
type Move struct {
	to   string
	move *listener.Move
}

// Discard abandons the move and releases what Prepare bound.
func (m *Move) Discard() error { return m.move.Discard() }

// Prepare binds addr ("off" turns the listener off) for Apply. On error
// nothing has changed; the error names the address.
func (s *Server) Prepare(addr string) (*Move, error) {
	addr = listenAddr(addr)
	m, err := s.slot.Prepare(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	return &Move{to: addr, move: m}, nil
}

// Apply puts a prepared move in force: the new listener serves before the
// old one is closed.
func (s *Server) Apply(m *Move) {
	s.slot.Apply(m.move)
	if m.move != nil {
		s.log.Info().Str("addr", m.to).Msg("metrics listener moved")
	}
	s.listen = m.to
}

// Run serves until ctx is cancelled and returns once every listener's
// connections are closed (requests in progress get up to 2 s).
func (s *Server) Run(ctx context.Context) error {
	if a := s.Addr(); a != nil {
		s.log.Info().Stringer("addr", a).Msg("metrics listener started")
	}
	return s.slot.Run(ctx, s.serve)
}

// serve serves one listener with an HTTP server of its own until the
// listener is closed (shutdown, or a move), then closes that server's
// connections, so none outlives its listener (requests in progress get up
// to 2 s).
func (s *Server) serve(_ context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          httpErrorLog(s.log),
	}
	err := srv.Serve(netutil.LimitListener(ln, MaxConns))
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("metrics serve: %w", err)
}
