// Package probe owns the peer probes of pool mode (the "Service Probe" of
// the original spdu): for each peer site it sends a read-only GET along the
// real client path (the peer's public address, with the service's Host
// header and TLS server name), applies rise and fall, optionally reads the
// peer's spdu status for its spare capacity, and publishes the results as an
// immutable snapshot. It never writes to a peer. It does not decide what DNS
// answers; the pool policy does.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/status"
)

// Peer is one peer site to probe.
type Peer struct {
	// Name is the peer site's name.
	Name string
	// URL is the probe target, e.g. "https://5.6.7.8/status": a GET that is
	// healthy on any 2xx status.
	URL string
	// Host is the Host header and TLS server name (SNI and the name the
	// certificate is verified against), e.g. "api.domain.tld".
	Host string
	// Expect, when set, must occur in the response body.
	Expect string
	// StatusURL, when set, is the peer's spdu status JSON
	// ("https://5.6.7.8/.well-known/spdu/status"), read after each good
	// probe for the peer's capacity. Without it the peer counts as full.
	StatusURL string
	// Interval is the time between probes; Timeout bounds one probe
	// (including the status read), shorter than Interval.
	Interval, Timeout time.Duration
	// Rise and Fall are the consecutive good and bad probes needed to mark
	// the peer up and down; the first probe decides at once.
	Rise, Fall int
	// CAFile, when set, is a PEM file of CAs trusted instead of the
	// system's (peers.NAME.ca_file); Prepare reads it into RootCAs.
	CAFile string
	// RootCAs, when not nil, replaces the system's roots for verifying the
	// peer's certificate (a private CA).
	RootCAs *x509.CertPool
	// InsecureSkipVerify turns TLS certificate verification off (tests
	// only).
	InsecureSkipVerify bool
}

// Result is a peer's state after its latest probe.
type Result struct {
	// Name is the peer's name.
	Name string
	// Up is true once Rise probes passed, until Fall probes fail.
	Up bool
	// Settled is false while a rise or fall count is under way.
	Settled bool
	// Latency is the duration of the latest probe.
	Latency time.Duration
	// Capacity is the peer's spare capacity from 0 to 1 as its status
	// document says (status.PeerCapacity), 1 when unknown; 0 when the peer
	// says it is withdrawn or drained.
	Capacity float64
	// Error is why the latest probe failed, or "".
	Error string
	// Since is when Up last changed.
	Since time.Time
}

// Config is what the prober needs from the configuration: the peers
// ([[peers]]), in configuration order.
type Config struct {
	Peers []Peer
}

// Prober probes every peer on its own goroutine. Its lifecycle is the
// daemon's: New binds nothing, Run probes and waits for its goroutines,
// Prepare and Apply reload.
type Prober struct {
	log      zerolog.Logger
	onChange func(Result)
	snap     atomic.Pointer[[]Result]
	mu       sync.Mutex // guards writes of snap
	// peers is the list Run starts with; Apply hands Run a new one
	// through pending and wakes it.
	peers   []Peer
	pending atomic.Pointer[[]Peer]
	wake    chan struct{}
}

// New returns a Prober for cfg. onChange, if not nil, is called from a
// probe goroutine when a peer goes up or down; it must not block. It
// returns Prepare's errors.
func New(logger zerolog.Logger, cfg Config, onChange func(Result)) (*Prober, error) {
	plan, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	p := &Prober{log: logger.With().Str("component", "probe").Logger(), peers: plan.peers, onChange: onChange, wake: make(chan struct{}, 1)}
	now := time.Now()
	rs := make([]Result, len(p.peers))
	for i, peer := range p.peers {
		rs[i] = notProbed(peer.Name, now)
	}
	p.snap.Store(&rs)
	return p, nil
}

func notProbed(name string, now time.Time) Result {
	return Result{Name: name, Capacity: 1, Settled: true, Since: now, Error: "not probed yet"}
}

// Snapshot returns the latest results, one per peer in configuration order
// (the order of the latest Apply once Run has applied it). The slice must
// not be modified.
func (p *Prober) Snapshot() []Result { return *p.snap.Load() }

// Plan is a prepared peer list, from Prepare.
type Plan struct {
	peers []Peer
}

// Prepare readies cfg for Apply: every peer's CAFile is read now. It
// changes nothing; errors name the peer and the file.
func (p *Prober) Prepare(cfg Config) (*Plan, error) { return prepare(cfg) }

func prepare(cfg Config) (*Plan, error) {
	peers := slices.Clone(cfg.Peers)
	for i := range peers {
		pr := &peers[i]
		if pr.CAFile == "" {
			continue
		}
		pem, err := os.ReadFile(pr.CAFile)
		if err != nil {
			return nil, fmt.Errorf("peers.%s.ca_file: %w", pr.Name, err)
		}
		pr.RootCAs = x509.NewCertPool()
		if !pr.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("peers.%s.ca_file: %s holds no PEM certificate", pr.Name, pr.CAFile)
		}
	}
	return &Plan{peers: peers}, nil
}

// Apply replaces the peer list; Run applies it at once. A peer whose name
// stays keeps its result and its rise and fall counts: if its settings are
// the same its probes go on undisturbed, otherwise they restart with the
// new settings (rise and fall judged by the new counts from the next
// probe), so an up peer stays up across the reload. A new peer starts
// down, not probed yet; a removed one stops being probed and leaves the
// snapshot. It never blocks.
func (p *Prober) Apply(plan *Plan) {
	p.pending.Store(&plan.peers)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// peerRun is one peer's probe goroutine as Run tracks it.
type peerRun struct {
	peer  Peer
	state *peerState
	stop  context.CancelFunc
	done  chan struct{}
}

// peerState is one peer's rise/fall state, owned by its probe goroutine
// while it runs and carried over to the next one on a reload.
type peerState struct {
	rf     health.RiseFall
	since  time.Time // when rf.Up() last changed
	probed bool      // a probe has completed
}

// observe feeds one probe's outcome and reports whether the peer went up
// or down. A peer's first probe decides its state at once; after that,
// rise and fall apply. So a site that starts (or reloads with a new peer)
// hands out a healthy peer after one probe instead of refusing for rise
// probe intervals, a refusal that PowerDNS Recursor would remember for a
// minute (docs/resolvers.md).
func (st *peerState) observe(good bool) bool {
	if !st.probed {
		st.probed = true
		st.rf.Set(good)
		return good
	}
	return st.rf.Observe(good)
}

// Run probes until ctx is cancelled and returns after every probe goroutine
// has exited.
func (p *Prober) Run(ctx context.Context) error {
	runs := map[string]*peerRun{}
	start := func(peer Peer, st *peerState) {
		pctx, stop := context.WithCancel(ctx)
		r := &peerRun{peer: peer, state: st, stop: stop, done: make(chan struct{})}
		runs[peer.Name] = r
		go func() {
			defer close(r.done)
			p.loop(pctx, peer, st)
		}()
	}
	halt := func(r *peerRun) {
		r.stop()
		<-r.done
		delete(runs, r.peer.Name)
	}
	now := time.Now()
	for _, peer := range p.peers {
		start(peer, newState(peer, now))
	}
	for {
		select {
		case <-ctx.Done():
			for _, r := range runs {
				halt(r)
			}
			return nil
		case <-p.wake:
		}
		next := p.pending.Swap(nil)
		if next == nil {
			continue
		}
		// Stop the removed and changed peers' probes, store the new
		// snapshot, then start the new and changed ones, so that no first
		// probe publishes into a snapshot without its entry.
		keep := make(map[string]bool, len(*next))
		for _, peer := range *next {
			keep[peer.Name] = true
		}
		var restart []*peerRun
		for name, r := range runs {
			if !keep[name] {
				halt(r)
				p.log.Info().Str("peer", name).Msg("peer removed")
			}
		}
		for _, peer := range *next {
			if r, ok := runs[peer.Name]; ok && !samePeer(r.peer, peer) {
				halt(r) // the state is free once its goroutine is done
				r.state.rf.Rise, r.state.rf.Fall = peer.Rise, peer.Fall
				r.peer = peer
				restart = append(restart, r)
			}
		}
		now := time.Now()
		p.mu.Lock()
		old := map[string]Result{}
		for _, r := range *p.snap.Load() {
			old[r.Name] = r
		}
		rs := make([]Result, len(*next))
		for i, peer := range *next {
			if r, ok := old[peer.Name]; ok {
				rs[i] = r
			} else {
				rs[i] = notProbed(peer.Name, now)
			}
		}
		p.snap.Store(&rs)
		p.mu.Unlock()
		for _, r := range restart {
			start(r.peer, r.state)
			p.log.Info().Str("peer", r.peer.Name).Msg("peer probe settings changed")
		}
		for _, peer := range *next {
			if _, ok := runs[peer.Name]; !ok {
				start(peer, newState(peer, now))
				p.log.Info().Str("peer", peer.Name).Msg("peer added")
			}
		}
	}
}

// samePeer reports whether a and b probe alike.
func samePeer(a, b Peer) bool {
	ra, rb := a.RootCAs, b.RootCAs
	a.RootCAs, b.RootCAs = nil, nil
	return a == b && (ra == rb || (ra != nil && rb != nil && ra.Equal(rb)))
}

func newState(peer Peer, now time.Time) *peerState {
	return &peerState{rf: health.RiseFall{Rise: peer.Rise, Fall: peer.Fall}, since: now}
}

// loop probes peer every interval until ctx is done, feeding st, which it
// owns until it returns.
func (p *Prober) loop(ctx context.Context, peer Peer, st *peerState) {
	client := newClient(peer)
	defer client.CloseIdleConnections()
	tick := time.NewTicker(peer.Interval)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, peer.Timeout)
		start := time.Now()
		capacity, err := probeOnce(pctx, client, peer)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		changed := st.observe(err == nil)
		if changed {
			st.since = now
		}
		r := Result{Name: peer.Name, Up: st.rf.Up(), Settled: st.rf.Settled(), Latency: now.Sub(start), Capacity: capacity, Since: st.since}
		if err != nil {
			r.Error = err.Error()
		}
		p.publish(r)
		p.log.Debug().Str("peer", peer.Name).Bool("ok", err == nil).Dur("latency", r.Latency).Float64("capacity", capacity).Err(err).Msg("probe")
		if changed {
			p.log.Info().Str("peer", peer.Name).Bool("up", r.Up).Dur("latency", r.Latency).Float64("capacity", capacity).
				Str("error", r.Error).Msg("peer state changed")
			if p.onChange != nil {
				p.onChange(r)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// publish stores r in the snapshot entry of its peer.
func (p *Prober) publish(r Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := append([]Result(nil), *p.snap.Load()...)
	for i := range next {
		if next[i].Name == r.Name {
			next[i] = r
		}
	}
	p.snap.Store(&next)
}

func newClient(peer Peer) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{ServerName: peer.Host, RootCAs: peer.RootCAs, InsecureSkipVerify: peer.InsecureSkipVerify}, //nolint:gosec // opt-out is explicit and documented for tests
		DialContext:         (&net.Dialer{Timeout: peer.Timeout}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     2 * peer.Interval,
		DisableCompression:  true,
	}
	return &http.Client{
		Transport: tr,
		// A redirect would leave the real path: report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// probeOnce runs the probe and, when it passes and a status URL is set, reads
// the peer's capacity. A failed status read does not fail the probe: the
// peer then counts as full.
func probeOnce(ctx context.Context, client *http.Client, peer Peer) (float64, error) {
	body, err := get(ctx, client, peer.URL, peer.Host)
	if err != nil {
		return 0, err
	}
	if peer.Expect != "" && !strings.Contains(string(body), peer.Expect) {
		return 0, fmt.Errorf("probe %s: body lacks %q", peer.URL, peer.Expect)
	}
	if peer.StatusURL == "" {
		return 1, nil
	}
	sb, err := get(ctx, client, peer.StatusURL, peer.Host)
	if err != nil {
		return 1, nil //nolint:nilerr // capacity unknown: full, as documented
	}
	c, err := status.PeerCapacity(sb)
	if err != nil {
		return 1, nil //nolint:nilerr // capacity unknown: full, as documented
	}
	return c, nil
}

// maxBody bounds what is read of a probe or status reply.
const maxBody = 64 << 10

func get(ctx context.Context, client *http.Client, url, host string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", url, err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "spdu-haproxy-probe")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("probe %s: read body: %w", url, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("probe %s: status %s", url, resp.Status)
	}
	return body, nil
}
