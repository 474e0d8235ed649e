package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/control"
	"github.com/spdu/spdu-haproxy/internal/haproxy"
	"github.com/spdu/spdu-haproxy/internal/health"
	"github.com/spdu/spdu-haproxy/internal/site"
)

// controlSettings are the configuration values of the control plane and the
// adaptive agent (keys control.*, haproxy.frontend and agent.mode,
// agent.min_weight, agent.half_life, agent.recovery_rate,
// agent.drain_servers).
type controlSettings struct {
	// Socket is the control socket path; StateFile the drain state file.
	Socket, StateFile string
	// Frontend is the HAProxy frontend whose rates drain -wait watches; ""
	// disables -wait.
	Frontend string
	// QuietPeriod is how long the frontend must stay quiet for drain -wait.
	QuietPeriod time.Duration
	// Mode is the agent mode, "static" or "adaptive"; Weights the adaptive
	// policy (ignored in static mode).
	Mode    string
	Weights health.WeightPolicy
	// DrainServers drains every server through the agent during a site
	// drain, when the backend has a backup server.
	DrainServers bool
}

// prepareSite loads the drain state file and completes the poller's
// configuration with it (a drain that survives restarts), its persistence,
// the agent mode and drain_servers. Call it before site.New; an unreadable
// state file is an error (the daemon must not guess whether the site is in
// maintenance).
func prepareSite(cs controlSettings, sc *site.Config) error {
	store := control.NewStore(cs.StateFile)
	d, err := store.Load()
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	sc.Drain, sc.SaveDrain = d, store.Save
	applyAgentMode(cs, sc)
	return nil
}

// applyAgentMode sets the poller's agent mode and drain_servers from cs.
func applyAgentMode(cs controlSettings, sc *site.Config) {
	sc.DrainServers, sc.Adaptive = cs.DrainServers, nil
	if cs.Mode == "adaptive" {
		w := cs.Weights
		sc.Adaptive = &w
	}
}

// newControlServer builds the control socket server for poller.
// dnsServing reports what the DNS server answers. Listen it with the other
// listeners, then Run it in the group that stops first.
func newControlServer(logger zerolog.Logger, cs controlSettings, siteName, haproxySocket string, sc site.Config, poller *site.Poller, dnsServing func() bool) *control.Server {
	cfg, front := controlConfig(cs, siteName, haproxySocket, sc)
	return control.New(logger, cfg, poller, front, dnsServing)
}

// controlConfig returns the control server's settings and its frontend
// source (nil when haproxy.frontend is not set). The frontend is read
// through a Runtime of its own (a Runtime allows one call at a time, and
// the poller's is busy every poll).
func controlConfig(cs controlSettings, siteName, haproxySocket string, sc site.Config) (control.Config, control.FrontendSource) {
	var front control.FrontendSource
	if cs.Frontend != "" {
		rt := haproxy.NewRuntime(haproxySocket)
		front = func(ctx context.Context) (haproxy.FrontendStats, error) { return rt.ShowFrontend(ctx, cs.Frontend) }
	}
	return control.Config{
		Socket: cs.Socket, Site: siteName, Mode: cs.Mode, QuietPeriod: cs.QuietPeriod,
		PollInterval: sc.Interval, PollTimeout: sc.Timeout,
	}, front
}

// controlTimeout bounds a drain, resume or status call, on top of -wait.
const controlTimeout = 10 * time.Second

// controlMain runs the client commands `drain [-reason TEXT] [-wait
// DURATION]`, `resume` and `status [-json]` against the daemon's control
// socket. fs already holds the common flags (-config); socketOf returns the
// socket path from the configuration, unless -socket is given.
func controlMain(cmd string, fs *flag.FlagSet, args []string, stdout io.Writer, socketOf func() (string, error)) error {
	socket := fs.String("socket", "", "control socket path (default: control.socket of the configuration)")
	req := control.Request{Cmd: cmd}
	var asJSON *bool
	switch cmd {
	case control.CmdDrain:
		fs.StringVar(&req.Reason, "reason", "", "why the site is drained (shown in status)")
		fs.DurationVar(&req.Wait, "wait", 0, "wait until the frontend has been quiet for control.quiet_period, at most this long")
	case control.CmdResume:
	case control.CmdStatus:
		asJSON = fs.Bool("json", false, "print the status as JSON")
	default:
		return fmt.Errorf("unknown control command %q: %w", cmd, errUsage)
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || req.Wait < 0 {
		return errUsage
	}
	if *socket == "" {
		var err error
		if *socket, err = socketOf(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout+req.Wait)
	defer cancel()
	resp, err := control.Call(ctx, *socket, req)
	if err != nil && !errors.Is(err, control.ErrCommand) {
		return err
	}
	switch {
	case asJSON != nil && *asJSON:
		writeStatusJSON(stdout, resp.Status)
	case cmd == control.CmdDrain && err == nil && req.Wait > 0:
		fmt.Fprintf(stdout, "site %s drained; frontend quiet after %s\n", resp.Status.Site, resp.Waited.Round(time.Millisecond))
	case cmd == control.CmdDrain:
		fmt.Fprintf(stdout, "site %s drained: zone withdrawn (%s)\n", resp.Status.Site, resp.Status.Reason)
	case cmd == control.CmdResume:
		fmt.Fprintf(stdout, "site %s resumed: %s\n", resp.Status.Site, stateWord(resp.Status.Serving))
	default:
		writeStatus(stdout, resp.Status)
	}
	return err
}

func stateWord(serving bool) string {
	if serving {
		return "serving"
	}
	return "withdrawn until healthy"
}

// writeStatus prints a Status for people.
func writeStatus(w io.Writer, st control.Status) {
	fmt.Fprintf(w, "site %s: %s since %s\n  reason: %s\n", st.Site, map[bool]string{true: "SERVING", false: "WITHDRAWN"}[st.Serving],
		st.Since.Format(time.RFC3339), st.Reason)
	if st.DNSServing != st.Serving {
		fmt.Fprintf(w, "  dns: serving=%v (dry-run)\n", st.DNSServing)
	}
	fmt.Fprintf(w, "  servers: %d of %d usable, %d needed\n", st.Usable, st.Total, st.Required)
	if st.LastError != "" {
		fmt.Fprintf(w, "  last poll error: %s\n", st.LastError)
	}
	if d := st.Drain; d.Active {
		fmt.Fprintf(w, "  drain: ACTIVE since %s, reason %q\n", d.Since.Format(time.RFC3339), d.Reason)
	} else {
		fmt.Fprintf(w, "  drain: none\n")
	}
	if len(st.Drain.Servers) > 0 {
		fmt.Fprintf(w, "  servers drained by our agent: %s\n", strings.Join(st.Drain.Servers, " "))
	}
	algo := st.Algo
	if st.StaticAlgo {
		algo += " (static: weights ignored)"
	}
	fmt.Fprintf(w, "  agent: %s, balance %s\n\n", st.Mode, algo)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tSTATUS\tUSABLE\tADVERTISED\tAPPLIED\tAGENT REPLY")
	for _, s := range st.Servers {
		adv, name := fmt.Sprintf("%d%%", s.Advertised), s.Name
		if s.Backup {
			adv, name = "-", s.Name+" (backup)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%q\n", name, s.Status, s.Usable, adv, s.Applied, s.AgentReply)
	}
	tw.Flush()
}

// writeStatusJSON prints a Status as indented JSON.
func writeStatusJSON(w io.Writer, st control.Status) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(st) //nolint:errcheck // plain types; a failed write shows on the terminal
}
