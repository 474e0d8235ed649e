package main

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/dnsserve"
	"github.com/spdu/spdu-haproxy/internal/metrics"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// statusDoc is the JSON document served at /status.
type statusDoc struct {
	Site      string         `json:"site"`
	Zone      string         `json:"zone"`
	Serving   bool           `json:"serving"`
	DNSServes bool           `json:"dns_serving"`
	Serial    uint32         `json:"soa_serial"`
	Reason    string         `json:"reason"`
	Since     time.Time      `json:"since"`
	Usable    int            `json:"usable"`
	Total     int            `json:"total"`
	Required  int            `json:"min_up"`
	LastGood  *time.Time     `json:"last_good_poll,omitempty"`
	LastError string         `json:"last_error,omitempty"`
	Polls     uint64         `json:"polls"`
	Drained   bool           `json:"drained"`
	DrainNote string         `json:"drain_reason,omitempty"`
	Servers   []serverStatus `json:"servers"`
}

type serverStatus struct {
	Name        string `json:"name"`
	Status      string `json:"status"`
	Weight      int    `json:"weight"`
	Usable      bool   `json:"usable"`
	Advertised  int    `json:"advertised_weight"`
	Backup      bool   `json:"backup,omitempty"`
	AgentStatus string `json:"agent_status,omitempty"`
}

func statusOf(cfg *config.Config, snap *site.Snapshot, dnsSrv *dnsserve.Server) statusDoc {
	h := snap.Health
	doc := statusDoc{
		Site: cfg.Site, Zone: cfg.DNS.Zone, Serving: h.Serving, DNSServes: dnsSrv.Serving(), Serial: dnsSrv.Serial(),
		Reason: h.Reason, Since: h.Since, Usable: h.Usable, Total: h.Total, Required: h.Required,
		LastError: h.LastError, Polls: snap.Polls, Drained: snap.Drain.Active, DrainNote: snap.Drain.Reason,
		Servers: []serverStatus{},
	}
	if !h.LastGood.IsZero() {
		lg := h.LastGood
		doc.LastGood = &lg
	}
	for _, s := range snap.Stats.Servers {
		adv := 0 // backup servers get no weight from our agent
		if !s.Backup {
			adv = snap.Weight(s.Name)
		}
		doc.Servers = append(doc.Servers, serverStatus{Name: s.Name, Status: s.Status, Weight: s.Weight,
			Usable: s.Usable, Advertised: adv, Backup: s.Backup, AgentStatus: s.AgentStatus})
	}
	return doc
}

func siteMetrics(snap *site.Snapshot) metrics.Site {
	h := snap.Health
	return metrics.Site{
		Serving: h.Serving, Since: h.Since, Usable: h.Usable, Total: h.Total, Required: h.Required,
		Polls: snap.Polls, PollErrors: snap.PollErrors, LastPollDuration: snap.LastPollDuration, LastGood: h.LastGood,
		Drained: snap.Drain.Active, Weights: snap.Weights,
	}
}

func dnsMetrics(s *dnsserve.Server) metrics.DNS {
	r := s.RRLStats()
	q := s.QueryStats()
	queries := make(map[metrics.QueryKey]uint64, len(q))
	for k, v := range q {
		queries[metrics.QueryKey{Transport: k.Transport, Type: k.Type, Rcode: k.Rcode}] = v
	}
	return metrics.DNS{Queries: queries, RateLimited: map[string]uint64{"drop": r.Dropped, "slip": r.Slipped}}
}

// systemdNotify sends READY=1 once the first poll has finished (every
// listener is bound by then), and, when the unit sets WatchdogSec, pings the
// watchdog at half its interval for as long as polls keep completing: a
// stuck poller stops the pings and systemd restarts the daemon. Without
// NOTIFY_SOCKET it does nothing.
func systemdNotify(ctx context.Context, logger zerolog.Logger, poller *site.Poller) error {
	select {
	case <-poller.Ready():
	case <-ctx.Done():
		return nil
	}
	if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		logger.Warn().Err(err).Msg("sd_notify READY failed")
	} else if ok {
		logger.Info().Msg("told systemd READY")
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return nil
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	last := poller.Snapshot().Polls
	for {
		select {
		case <-ctx.Done():
			daemon.SdNotify(false, daemon.SdNotifyStopping) //nolint:errcheck // best effort at exit
			return nil
		case <-tick.C:
			if n := poller.Snapshot().Polls; n != last {
				last = n
				daemon.SdNotify(false, daemon.SdNotifyWatchdog) //nolint:errcheck // systemd restarts us if pings stop
			}
		}
	}
}
