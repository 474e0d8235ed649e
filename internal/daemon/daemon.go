// Package daemon owns spdu-haproxy's daemon as a whole: it builds every
// component from the configuration, binds their listeners, runs them, and
// reloads and stops them in order. The command line (cmd/spdu-haproxy)
// only parses flags, loads the configuration and hands over to New, Run and
// Reload; tests start the daemon through this package too.
//
// The data flow, from the stats socket to DNS answers and agent replies:
//
//	HAProxy runtime API ──show stat──> site.Poller ──Snapshot──┬──> agent replies (haproxy.AgentServer)
//	                                   (health, drain, weights)├──> status document, metrics, control
//	peer sites ──GET──> probe.Prober ──Results──┐              │
//	                                            v              v
//	                      pool.Publisher (Decide, stability, dry-run)
//	                                            │ Published
//	                                            v
//	                      answerBook.render ──dnsserve.Answers──> dnsserve.Server.SetAnswers
//
// Every component has the same lifecycle: its constructor binds nothing;
// Bind (listeners only) binds and Close releases what Run never served;
// Run(ctx) returns once its goroutines have exited; a reload is Prepare
// (may fail, changes nothing that is served, may bind new listeners) then
// Apply (cannot fail). It decides nothing itself: the policies live in
// internal/health, internal/pool and internal/site.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/control"
	"github.com/spdu/spdu-haproxy/internal/dnssec"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/metrics"
	"github.com/spdu/spdu-haproxy/internal/notify"
	"github.com/spdu/spdu-haproxy/internal/pool"
	"github.com/spdu/spdu-haproxy/internal/probe"
	"github.com/spdu/spdu-haproxy/internal/site"
	"github.com/spdu/spdu-haproxy/internal/status"
)

// Options are the run command's settings that are not in the
// configuration file.
type Options struct {
	// Logger is the daemon's logger; each component narrows it.
	Logger zerolog.Logger
	// Version is logged at start.
	Version string
	// DryRun serves the zone whatever the health policy decides and turns
	// agent replies into comments that HAProxy ignores (run -dry-run).
	DryRun bool
	// ReadSideFile reads the files the configuration names that decide what
	// the world is told (the DNS cookie secret, the drain state file,
	// DNSSEC keys): config.SideFileReader; nil reads them plainly.
	ReadSideFile func(path string) ([]byte, error)
	// ReadKeyFile reads the DNSSEC key files (dnssec.keys and
	// dnssec.peer_keys): KeyReader; nil is KeyReader(true), which checks
	// only that a private key is not readable by group or others.
	ReadKeyFile dnssec.ReadFunc
	// NotifySystemd tells systemd READY=1 once the first poll has finished
	// and pings its watchdog while polls complete (sd_notify; nothing
	// happens without NOTIFY_SOCKET).
	NotifySystemd bool
}

// Daemon is one site's spdu-haproxy. New builds it, Run runs it once, and
// Reload swaps in a new configuration while it runs.
type Daemon struct {
	log  zerolog.Logger
	opts Options
	cfg  atomic.Pointer[config.Config] // in force
	book atomic.Pointer[answerBook]    // in force

	dns       *dnsserve.Server
	agent     *haproxy.AgentServer
	control   *control.Server
	metrics   *metrics.Server
	poller    *site.Poller
	prober    *probe.Prober // nil in self mode
	publisher *pool.Publisher
	notifier  *notify.Notifier

	agentMetrics *metrics.Agent
	// lastAnswer is the latest published decision; publish alone uses it
	// (the publisher serializes its calls).
	lastAnswer pool.Answer

	// mu serializes Reload with the start and the end of Run.
	mu      sync.Mutex
	running bool // the listeners are bound and the components run
	stopped bool // Run has begun to shut down, or returned
}

// New builds every component from cfg (a validated configuration: see
// config.Load) and binds nothing. It reads the drain state file
// (control.state_file) and the files cfg names (the DNS cookie secret, the
// peers' CA files); errors name the key.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	d := &Daemon{log: opts.Logger.With().Str("site", cfg.Site).Logger(), opts: opts}
	d.cfg.Store(cfg)
	d.book.Store(newAnswerBook(cfg))
	if opts.ReadKeyFile == nil {
		d.opts.ReadKeyFile = KeyReader(true)
	}
	dnsCfg, err := d.dnsConfig(cfg)
	if err != nil {
		return nil, err
	}
	if d.dns, err = dnsserve.New(d.log, dnsCfg); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	d.notifier = notify.New(d.log, notifyConfig(cfg))
	store := control.NewStore(cfg.Control.StateFile, opts.ReadSideFile)
	drain, shed, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("control.state_file: %w", err)
	}
	sc := siteConfig(cfg, statSource(cfg))
	sc.Drain, sc.SaveDrain = drain, store.Save
	sc.ManualShed, sc.SaveShed = shed, store.SaveShed
	if d.poller, err = site.New(d.log, sc, d.siteChanged); err != nil {
		return nil, err
	}
	var peers func() []pool.Member
	if cfg.DNS.Mode == config.ModePool {
		if d.prober, err = probe.New(d.log, proberConfig(cfg), func(probe.Result) { d.publisher.Kick() }); err != nil {
			return nil, err
		}
		peers = func() []pool.Member { return d.book.Load().members(d.prober.Snapshot()) }
	}
	d.publisher = pool.NewPublisher(policy(cfg, opts.DryRun),
		func() pool.Member { return d.book.Load().self(d.poller.Snapshot()) }, peers, d.publish)
	d.poller.OnShedChange(d.publisher.Kick)
	d.agent = haproxy.NewAgentServer(d.log, d.agentReply, agentConfig(cfg))
	d.control = control.New(d.log, d.controlConfig(cfg), d.poller, d.Status).WithZone(d.dns.ZoneText)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if d.agentMetrics, err = metrics.NewAgent(reg); err != nil {
		return nil, err
	}
	collector := metrics.NewCollector(d.siteMetrics, d.dnsMetrics)
	if d.prober != nil {
		collector.WithPeers(d.peerMetrics)
	}
	reg.MustRegister(collector)
	d.metrics = metrics.NewServer(d.log, cfg.Metrics.Listen, reg, d.Status)
	return d, nil
}

// siteChanged runs on the poller's goroutine when the site switches
// between serving and withdrawn: the publisher decides again at once, and
// the operator is told.
func (d *Daemon) siteChanged(st health.State) {
	d.publisher.Kick()
	if d.opts.DryRun {
		d.log.Info().Bool("serving", st.Serving).Str("reason", st.Reason).Msg("dry-run: zone stays served")
	}
	d.notifier.Notify(notify.Event{Site: d.cfg.Load().Site, Kind: "site", State: stateName(st.Serving), Reason: st.Reason,
		Usable: st.Usable, Total: st.Total, Time: st.Since})
}

// publish is the publisher's output: the decision rendered into the DNS
// server's one input. A change of the sites handed out is logged at info,
// a new order or TTL at debug.
func (d *Daemon) publish(pub pool.Published) {
	a := d.book.Load().render(pub)
	if err := d.dns.SetAnswers(a); err != nil {
		// The book's addresses passed config validation; keep serving the
		// previous answer rather than a broken one.
		d.log.Error().Err(err).Msg("answer rejected by the DNS server")
		return
	}
	ev := d.log.Debug()
	if !pool.Same(d.lastAnswer, pub.Answer) {
		ev = d.log.Info()
	}
	d.lastAnswer = pub.Answer
	ev = ev.Bool("refuse", pub.Answer.Refuse).Strs("sites", memberNames(pub.Answer)).Uint32("serial", d.dns.Serial())
	if d.book.Load().mode == config.ModePool {
		ev = ev.Bool("unstable", pub.Answer.Unstable)
	}
	ev.Msg("answer published")
}

// agentReply answers one agent check: the poller snapshot's reply for the
// server, or in dry-run a comment that HAProxy ignores.
func (d *Daemon) agentReply(backend, server string) string {
	reply := d.poller.Snapshot().AgentReply(backend, server)
	if d.opts.DryRun && !haproxy.NoOp(reply) {
		reply = "#dry-run: would reply " + reply
	}
	d.agentMetrics.Observe(reply)
	return reply
}

// Status returns the site's full status document (GET /status,
// `spdu-haproxy status`); its public form goes to peers.
func (d *Daemon) Status() status.Document {
	cfg := d.cfg.Load()
	in := status.Input{Site: cfg.Site, Zone: cfg.DNS.Zone, AgentMode: cfg.Agent.Mode,
		DNSServing: d.dns.Serving(), Serial: d.dns.Serial()}
	if st := d.dns.DNSSECState(); st.Enabled {
		in.DNSSEC = &status.DNSSEC{Expires: st.Expires, Signatures: st.Signed, Errors: st.Errors, LastError: st.LastError, Failing: st.Failing}
	}
	return status.Build(in, d.poller.Snapshot())
}

// AgentAddr returns the agent listener's address, or nil before Run binds.
func (d *Daemon) AgentAddr() net.Addr { return d.agent.Addr() }

// Poller returns the site poller, whose snapshot tests read.
func (d *Daemon) Poller() *site.Poller { return d.poller }

// binder is a component with listeners.
type binder interface {
	Bind() error
	Close() error
}

// bind binds every listener before anything serves, so that a port
// conflict fails the start as a whole; on error what was bound is
// released.
func (d *Daemon) bind() error {
	if err := d.dns.Bind(); err != nil {
		return fmt.Errorf("dns.listen: %w", err)
	}
	bound := []binder{d.dns}
	for _, b := range []binder{d.agent, d.control, d.metrics} {
		if err := b.Bind(); err != nil {
			for _, c := range bound {
				c.Close() //nolint:errcheck // releasing only
			}
			return err
		}
		bound = append(bound, b)
	}
	return nil
}

// Run binds every listener, runs every component until ctx is cancelled or
// one fails, and stops them in order: the agent, the poller, the peer
// probes, the publisher and the control socket stop first; the zone is then
// answered with the withdraw rcode for dns.shutdown_grace, so resolvers
// move on without timing out; then DNS, metrics and notifications stop. It
// returns after every component has stopped: nil after a cancel, else the
// first error. It may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running || d.stopped {
		d.mu.Unlock()
		return errors.New("daemon: Run called twice")
	}
	if err := d.bind(); err != nil {
		d.stopped = true
		d.mu.Unlock()
		return err
	}
	raiseFileLimit(d.log)
	cfg := d.cfg.Load()
	d.log.Info().Str("version", d.opts.Version).Str("zone", cfg.DNS.Zone).Str("mode", string(cfg.DNS.Mode)).
		Bool("dry_run", d.opts.DryRun).Strs("dns_listen", cfg.DNS.Listen).Str("agent_listen", cfg.Agent.Listen).
		Str("metrics_listen", cfg.Metrics.Listen).Str("socket", cfg.HAProxy.Socket).Str("backend", cfg.HAProxy.Backend).
		Msg("starting, withdrawn until healthy")

	front := newGroup() // stops first
	back := newGroup()  // stops after the grace period
	frontCtx, stopFront := context.WithCancel(ctx)
	defer stopFront()
	backCtx, stopBack := context.WithCancel(context.Background())
	defer stopBack()
	back.start(backCtx, "dns", d.dns.Run)
	back.start(backCtx, "metrics", d.metrics.Run)
	back.start(backCtx, "notify", d.notifier.Run)
	front.start(frontCtx, "poller", d.poller.Run)
	if d.prober != nil {
		front.start(frontCtx, "probe", d.prober.Run)
	}
	front.start(frontCtx, "publisher", d.publisher.Run)
	front.start(frontCtx, "agent", d.agent.Run)
	front.start(frontCtx, "control", d.control.Run)
	if d.opts.NotifySystemd {
		front.start(frontCtx, "systemd", func(ctx context.Context) error { return systemdNotify(ctx, d.log, d.poller) })
	}
	d.running = true
	d.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-front.failed:
	case <-back.failed:
	}
	d.mu.Lock() // waits for a reload in progress
	d.running, d.stopped = false, true
	grace := d.cfg.Load().DNS.ShutdownGrace.Duration
	d.mu.Unlock()
	if ctx.Err() != nil {
		d.log.Info().Dur("grace", grace).Msg("shutting down: zone withdrawn for the grace period")
	}
	stopFront()
	errFront := front.wait()
	d.publisher.Withdraw()
	if errFront == nil && ctx.Err() != nil {
		t := time.NewTimer(grace)
		select {
		case <-t.C:
		case <-back.failed:
			t.Stop()
		}
	}
	stopBack()
	errBack := back.wait()
	d.log.Info().Msg("stopped")
	if errFront != nil {
		return errFront
	}
	return errBack
}

func stateName(serving bool) string {
	if serving {
		return "serving"
	}
	return "withdrawn"
}

// siteMetrics, dnsMetrics and peerMetrics read the components' state at
// scrape time.
func (d *Daemon) siteMetrics() metrics.Site {
	snap := d.poller.Snapshot()
	h := snap.Health
	return metrics.Site{
		Serving: h.Serving, Since: h.Since, Usable: h.Usable, Total: h.Total, Required: h.Required,
		Polls: snap.Polls, PollErrors: snap.PollErrors, LastPollDuration: snap.LastPollDuration, LastGood: h.LastGood,
		Drained: snap.Drain.Active, Weights: snap.Weights,
		Utilization: snap.Load.Utilization, Shed: snap.Load.Shed,
	}
}

func (d *Daemon) dnsMetrics() metrics.DNS {
	r := d.dns.RRLStats()
	q := d.dns.QueryStats()
	queries := make(map[metrics.QueryKey]uint64, len(q))
	for k, v := range q {
		queries[metrics.QueryKey{Transport: k.Transport, Type: k.Type, Rcode: k.Rcode}] = v
	}
	k := d.dns.DNSSECState()
	return metrics.DNS{Queries: queries, RateLimited: map[string]uint64{"drop": r.Dropped, "slip": r.Slipped}, Shed: d.dns.ShedTotal(),
		DNSSECExpires: k.Expires, DNSSECSigned: k.Signed, DNSSECErrors: k.Errors, DNSSECFailing: k.Failing}
}

func (d *Daemon) peerMetrics() []metrics.Peer {
	rs := d.prober.Snapshot()
	out := make([]metrics.Peer, len(rs))
	for i, r := range rs {
		out[i] = metrics.Peer{Name: r.Name, Up: r.Up, Latency: r.Latency, Capacity: r.Capacity}
	}
	return out
}
