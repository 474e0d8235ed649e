package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/spdu/spdu-haproxy/internal/control"
	"github.com/spdu/spdu-haproxy/internal/status"
)

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
		fmt.Fprintf(stdout, "site %s resumed: %s\n", resp.Status.Site, map[bool]string{true: "serving", false: "withdrawn until healthy"}[resp.Status.Serving])
	default:
		resp.Status.WriteText(stdout)
	}
	return err
}

// writeStatusJSON prints a status document as indented JSON.
func writeStatusJSON(w io.Writer, st status.Document) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(st) //nolint:errcheck // plain types; a failed write shows on the terminal
}
