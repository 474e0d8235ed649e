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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/health"
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
	// the peer up and down.
	Rise, Fall int
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
	// Capacity is the peer's spare capacity from 0 to 1 (usable / total
	// servers from its status), 1 when unknown; 0 when the peer says it is
	// withdrawn or drained.
	Capacity float64
	// Error is why the latest probe failed, or "".
	Error string
	// Since is when Up last changed.
	Since time.Time
}

// Prober probes every peer on its own goroutine.
type Prober struct {
	log      zerolog.Logger
	onChange func(Result)
	snap     atomic.Pointer[[]Result]
	mu       sync.Mutex // guards writes of snap
	// peers is the list Run starts with; SetPeers hands Run a new one
	// through pending and wakes it.
	peers   []Peer
	pending atomic.Pointer[[]Peer]
	wake    chan struct{}
}

// New returns a Prober for peers. onChange, if not nil, is called from a
// probe goroutine when a peer goes up or down; it must not block.
func New(logger zerolog.Logger, peers []Peer, onChange func(Result)) *Prober {
	p := &Prober{log: logger.With().Str("component", "probe").Logger(), peers: peers, onChange: onChange, wake: make(chan struct{}, 1)}
	now := time.Now()
	rs := make([]Result, len(peers))
	for i, peer := range peers {
		rs[i] = notProbed(peer.Name, now)
	}
	p.snap.Store(&rs)
	return p
}

func notProbed(name string, now time.Time) Result {
	return Result{Name: name, Capacity: 1, Settled: true, Since: now, Error: "not probed yet"}
}

// Snapshot returns the latest results, one per peer in configuration order
// (the order of the latest SetPeers once Run has applied it). The slice
// must not be modified.
func (p *Prober) Snapshot() []Result { return *p.snap.Load() }

// SetPeers replaces the peer list on a configuration reload; Run applies it
// at once. A peer whose name stays keeps its result and its rise and fall
// counts: if its settings are the same its probes go on undisturbed,
// otherwise they restart with the new settings (rise and fall judged by the
// new counts from the next probe), so an up peer stays up across the
// reload. A new peer starts down, not probed yet; a removed one stops
// being probed and leaves the snapshot. It never blocks.
func (p *Prober) SetPeers(peers []Peer) {
	p.pending.Store(&peers)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// peerRun is one peer's probe goroutine as Run tracks it.
type peerRun struct {
	peer    Peer
	tracker *health.Tracker
	stop    context.CancelFunc
	done    chan struct{}
}

// Run probes until ctx is cancelled and returns after every probe goroutine
// has exited.
func (p *Prober) Run(ctx context.Context) error {
	runs := map[string]*peerRun{}
	start := func(peer Peer, tr *health.Tracker) {
		pctx, stop := context.WithCancel(ctx)
		r := &peerRun{peer: peer, tracker: tr, stop: stop, done: make(chan struct{})}
		runs[peer.Name] = r
		go func() {
			defer close(r.done)
			p.loop(pctx, peer, tr)
		}()
	}
	halt := func(r *peerRun) {
		r.stop()
		<-r.done
		delete(runs, r.peer.Name)
	}
	now := time.Now()
	for _, peer := range p.peers {
		start(peer, newTracker(peer, now))
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
				halt(r) // the tracker is free once its goroutine is done
				r.tracker.SetPolicy(trackerPolicy(peer))
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
			start(r.peer, r.tracker)
			p.log.Info().Str("peer", r.peer.Name).Msg("peer probe settings changed")
		}
		for _, peer := range *next {
			if _, ok := runs[peer.Name]; !ok {
				start(peer, newTracker(peer, now))
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

func trackerPolicy(peer Peer) health.Policy {
	return health.Policy{MinUp: health.Quorum{Count: 1}, Rise: peer.Rise, Fall: peer.Fall, StaleAfter: time.Duration(1<<62 - 1)}
}

func newTracker(peer Peer, now time.Time) *health.Tracker {
	return health.NewTracker(trackerPolicy(peer), now)
}

// loop probes peer every interval until ctx is done, feeding tr, which it
// owns until it returns.
func (p *Prober) loop(ctx context.Context, peer Peer, tr *health.Tracker) {
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
		ok := 0
		if err == nil {
			ok = 1
		}
		st, changed := tr.Observe(health.Observation{At: now, Usable: ok, Total: 1})
		r := Result{Name: peer.Name, Up: st.Serving, Settled: st.Settled(), Latency: now.Sub(start), Capacity: capacity, Since: st.Since}
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
	c, err := Capacity(sb)
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

// Capacity reads a peer's spare capacity from its spdu status JSON (the
// document served at /status): usable / total servers, 0 when the peer says
// it is not serving (withdrawn or drained). It returns an error for a
// document without those fields.
func Capacity(status []byte) (float64, error) {
	var doc struct {
		Serving *bool `json:"serving"`
		Usable  *int  `json:"usable"`
		Total   *int  `json:"total"`
	}
	if err := json.Unmarshal(status, &doc); err != nil {
		return 1, fmt.Errorf("peer status: %w", err)
	}
	if doc.Serving == nil || doc.Usable == nil || doc.Total == nil {
		return 1, errors.New("peer status: lacks serving, usable or total")
	}
	if !*doc.Serving || *doc.Total <= 0 {
		return 0, nil
	}
	return min(1, max(0, float64(*doc.Usable)/float64(*doc.Total))), nil
}
