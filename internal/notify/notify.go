// Package notify owns the optional notifications of site state changes: it
// runs an operator's command with the event in its environment and as JSON on
// standard input, and/or POSTs the JSON to a webhook. Delivery happens on the
// notifier's own goroutine with a timeout, from a bounded queue, so a slow or
// hung command never blocks the daemon. It decides nothing; the caller says
// what happened.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Event is one state change, as sent to the command (JSON on stdin and SPDU_*
// variables) and to the webhook (JSON body).
type Event struct {
	// Site is the site's name (SPDU_SITE).
	Site string `json:"site"`
	// Kind is what changed: "site" for the local site (SPDU_KIND).
	Kind string `json:"kind"`
	// State is "serving" or "withdrawn" (SPDU_STATE).
	State string `json:"state"`
	// Reason says why, in a few words (SPDU_REASON).
	Reason string `json:"reason"`
	// Usable and Total are the backend's usable and non-backup servers
	// (SPDU_USABLE, SPDU_TOTAL).
	Usable int `json:"usable"`
	Total  int `json:"total"`
	// Time is when the change happened, RFC 3339 (SPDU_TIME).
	Time time.Time `json:"time"`
}

func (e Event) env() []string {
	return []string{
		"SPDU_SITE=" + e.Site,
		"SPDU_KIND=" + e.Kind,
		"SPDU_STATE=" + e.State,
		"SPDU_REASON=" + e.Reason,
		"SPDU_USABLE=" + strconv.Itoa(e.Usable),
		"SPDU_TOTAL=" + strconv.Itoa(e.Total),
		"SPDU_TIME=" + e.Time.UTC().Format(time.RFC3339),
	}
}

// Config says where events go; an empty Exec and Webhook make a notifier that
// drops every event.
type Config struct {
	// Exec is the command and its arguments (absolute path first).
	Exec []string
	// Webhook is an http(s) URL for a JSON POST.
	Webhook string
	// Timeout bounds one command run or one POST.
	Timeout time.Duration
}

// QueueSize is how many undelivered events are kept; when full, the newest
// event is dropped and logged.
const QueueSize = 64

// Notifier delivers events in order on its own goroutine.
type Notifier struct {
	log    zerolog.Logger
	cfg    atomic.Pointer[Config]
	client *http.Client
	queue  chan Event
}

// New returns a Notifier; call Run to deliver.
func New(logger zerolog.Logger, cfg Config) *Notifier {
	n := &Notifier{
		log:    logger.With().Str("component", "notify").Logger(),
		client: &http.Client{},
		queue:  make(chan Event, QueueSize),
	}
	n.cfg.Store(&cfg)
	return n
}

// Plan is a prepared configuration, from Prepare.
type Plan struct{ cfg Config }

// Prepare readies cfg for Apply; it changes nothing and cannot fail: the
// configuration checked notify.* already (an absolute command, a timeout
// from 100 ms to 5 minutes). The error is there for the lifecycle's shape.
func (n *Notifier) Prepare(cfg Config) (*Plan, error) {
	return &Plan{cfg: cfg}, nil
}

// Apply puts a prepared configuration in force; events already queued are
// delivered with it.
func (n *Notifier) Apply(p *Plan) {
	cfg := p.cfg
	n.cfg.Store(&cfg)
}

// Enabled reports whether events go anywhere.
func (n *Notifier) Enabled() bool {
	c := n.cfg.Load()
	return len(c.Exec) > 0 || c.Webhook != ""
}

// Notify queues e without blocking; it returns false when the event was
// dropped because the queue is full or notifications are off.
func (n *Notifier) Notify(e Event) bool {
	if !n.Enabled() {
		return false
	}
	select {
	case n.queue <- e:
		return true
	default:
		n.log.Warn().Str("state", e.State).Str("reason", e.Reason).Msg("notification queue full, event dropped")
		return false
	}
}

// Run delivers queued events until ctx is cancelled; a delivery under way
// when ctx ends is cut short. It returns nil.
func (n *Notifier) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-n.queue:
			n.deliver(ctx, e)
		}
	}
}

func (n *Notifier) deliver(ctx context.Context, e Event) {
	cfg := *n.cfg.Load()
	body, err := json.Marshal(e)
	if err != nil { // cannot happen for this struct; keep the error visible
		n.log.Error().Err(err).Msg("encode event")
		return
	}
	if len(cfg.Exec) > 0 {
		if err := runCommand(ctx, cfg, e, body); err != nil {
			n.log.Warn().Err(err).Str("state", e.State).Msg("notify command failed")
		}
	}
	if cfg.Webhook != "" {
		if err := n.post(ctx, cfg, body); err != nil {
			n.log.Warn().Err(err).Str("state", e.State).Msg("notify webhook failed")
		}
	}
}

func runCommand(ctx context.Context, cfg Config, e Event, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cfg.Exec[0], cfg.Exec[1:]...)
	cmd.Env = append(os.Environ(), e.env()...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.WaitDelay = time.Second // a child that keeps stdout open cannot hold us
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("run %s: timed out after %s", cfg.Exec[0], cfg.Timeout)
		}
		return fmt.Errorf("run %s: %w: %.200s", cfg.Exec[0], err, out)
	}
	return nil
}

func (n *Notifier) post(ctx context.Context, cfg Config, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.Webhook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post webhook: status %s", resp.Status)
	}
	return nil
}
