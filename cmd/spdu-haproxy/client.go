package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spdu/spdu-haproxy/internal/control"
	"github.com/spdu/spdu-haproxy/internal/dnssec"
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
	case control.CmdZone:
	case control.CmdShed:
		fs.DurationVar(&req.For, "for", 0, "end the shed after this long (default: until shed off)")
		fs.StringVar(&req.Reason, "reason", "", "why load is shed (shown in status)")
	default:
		return fmt.Errorf("unknown control command %q: %w", cmd, errUsage)
	}
	// shed's FRACTION (or "off") may stand before, between or after the
	// flags; every other command takes none.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil || req.Wait < 0 || req.For < 0 {
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional, args = append(positional, fs.Arg(0)), fs.Args()[1:]
	}
	if want := map[bool]int{true: 1, false: 0}[cmd == control.CmdShed]; len(positional) != want {
		return errUsage
	}
	if cmd == control.CmdShed {
		f, err := parseFraction(positional[0])
		if err != nil {
			fmt.Fprintf(fs.Output(), "spdu-haproxy shed: %v\n", err)
			return errUsage
		}
		req.Fraction = f
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
	case cmd == control.CmdZone:
		fmt.Fprint(stdout, resp.Zone)
	case cmd == control.CmdShed:
		fmt.Fprintf(stdout, "site %s sheds %.0f%% of new clients (manual floor %.0f%%, utilization %.2f)\n", resp.Status.Site,
			100*resp.Status.Shed.Fraction, 100*resp.Status.Shed.Manual, resp.Status.Shed.Utilization)
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

// parseFraction reads shed's argument: "off", a fraction from 0 to 1, or a
// percentage such as "50%".
func parseFraction(s string) (float64, error) {
	if s == "off" {
		return 0, nil
	}
	scale := 1.0
	if p, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = p, 100
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f/scale >= 0 && f/scale <= 1) { // NaN fails too
		return 0, fmt.Errorf("%q: want off, a fraction from 0 to 1, or a percentage such as 50%%", s)
	}
	return f / scale, nil
}

// keygenMain writes a new key pair for `keygen -zone ZONE [-algorithm
// ALG] [-dir DIR]` and prints its base name.
func keygenMain(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	zone := fs.String("zone", "", "the pool zone the key signs (required)")
	algName := fs.String("algorithm", "ecdsap256sha256", "ecdsap256sha256 (13) or ed25519 (15)")
	dir := fs.String("dir", ".", "directory to write K<zone>+<alg>+<tag>.key and .private into")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *zone == "" {
		return errUsage
	}
	alg, err := dnssec.ParseAlgorithm(*algName)
	if err != nil {
		return fmt.Errorf("-algorithm: %w", err)
	}
	base, err := dnssec.Keygen(*dir, *zone, alg, time.Now())
	if err == nil {
		fmt.Fprintln(stdout, base)
	}
	return err
}
