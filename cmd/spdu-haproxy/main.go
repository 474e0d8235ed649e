// Command spdu-haproxy keeps a multi-site HTTP service reachable when a whole
// site fails: it reads the local HAProxy's runtime API, serves the delegated
// pool zone only while enough servers of the service backend are usable, and
// answers HAProxy's agent-checks.
//
// Usage:
//
//	spdu-haproxy run   [-config FILE] [-log-level LEVEL] [-log-format json|console] [-dry-run] [-allow-insecure-config]
//	spdu-haproxy check [-config FILE] [-allow-insecure-config]
//	spdu-haproxy drain  [-config FILE] [-socket PATH] [-reason TEXT] [-wait DURATION]
//	spdu-haproxy resume [-config FILE] [-socket PATH]
//	spdu-haproxy status [-config FILE] [-socket PATH] [-json]
//	spdu-haproxy shed   FRACTION|off [-config FILE] [-socket PATH] [-for DURATION] [-reason TEXT]
//	spdu-haproxy zone   [-config FILE] [-socket PATH]
//	spdu-haproxy keygen -zone ZONE [-algorithm ecdsap256sha256|ed25519] [-dir DIR]
//	spdu-haproxy ds     [-config FILE] [-allow-insecure-config]
//	spdu-haproxy version
//
// This package only parses the command line, loads the configuration, sets
// up logging and signals, and hands over to internal/daemon; it runs the
// client commands against the daemon's control socket. It is the only place
// that exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks a command-line mistake: exit code 2.
var errUsage = errors.New("usage")

func realMain(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 2
	default:
		fmt.Fprintf(stderr, "spdu-haproxy: %v\n", err)
		return 1
	}
}

const usage = `usage:
  spdu-haproxy run   [-config FILE] [-log-level LEVEL] [-log-format json|console] [-dry-run] [-allow-insecure-config]
  spdu-haproxy check [-config FILE] [-allow-insecure-config]
  spdu-haproxy drain  [-config FILE] [-socket PATH] [-reason TEXT] [-wait DURATION]
  spdu-haproxy resume [-config FILE] [-socket PATH]
  spdu-haproxy status [-config FILE] [-socket PATH] [-json]
  spdu-haproxy shed   FRACTION|off [-config FILE] [-socket PATH] [-for DURATION] [-reason TEXT]
  spdu-haproxy zone   [-config FILE] [-socket PATH]
  spdu-haproxy keygen -zone ZONE [-algorithm ecdsap256sha256|ed25519] [-dir DIR]
  spdu-haproxy ds     [-config FILE] [-allow-insecure-config]
  spdu-haproxy version
`

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("spdu-haproxy "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", config.DefaultPath, "configuration file (TOML)")
	insecure := fs.Bool("allow-insecure-config", false, "accept a configuration file that others than root or this user can change (development only)")
	switch cmd {
	case "run":
		level := fs.String("log-level", "info", "log level: debug, info, warn, error")
		format := fs.String("log-format", "json", "log format: json or console")
		dryRun := fs.Bool("dry-run", false, "serve the zone as healthy whatever the policy decides, and never change HAProxy through agent replies")
		if err := fs.Parse(rest); err != nil {
			return errUsage
		}
		logger, err := newLogger(stderr, *level, *format)
		if err != nil {
			fmt.Fprintf(stderr, "spdu-haproxy: %v\n", err)
			return errUsage
		}
		cfg, err := config.LoadDaemon(*cfgPath, *insecure)
		if err != nil {
			return err
		}
		return runDaemon(logger, cfg, daemon.Options{Logger: logger, Version: versionString(), DryRun: *dryRun, NotifySystemd: true,
			ReadSideFile: config.SideFileReader(*insecure), ReadKeyFile: daemon.KeyReader(*insecure)},
			func() (*config.Config, error) { return config.LoadDaemon(*cfgPath, *insecure) })
	case "check":
		if err := fs.Parse(rest); err != nil {
			return errUsage
		}
		cfg, err := config.LoadDaemon(*cfgPath, *insecure)
		readSide := config.SideFileReader(*insecure)
		var warn *config.StateOwnerWarning
		if errors.As(err, &warn) {
			// The daemon writes its state file as its own user; root
			// running check sees a foreign owner. The daemon's own start
			// applies the strict rule; every other side file has passed
			// LoadDaemon's checks, so they are read plainly here.
			fmt.Fprintf(stderr, "spdu-haproxy: warning: %v\n", warn.Err)
			cfg, err, readSide = warn.Config, nil, config.SideFileReader(true)
		}
		if err != nil {
			return err
		}
		// Build the daemon as run would, binding nothing: the cookie
		// secret, the state file, the DNSSEC keys and the peers' CA files
		// are read and parsed, and the zone is built (and signed).
		if _, err := daemon.New(cfg, daemon.Options{Logger: zerolog.Nop(), ReadSideFile: readSide, ReadKeyFile: daemon.KeyReader(*insecure)}); err != nil {
			return err
		}
		text, err := cfg.Encode()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "# %s: valid; effective configuration with defaults:\n%s", *cfgPath, text)
		return nil
	case "keygen":
		return keygenMain(fs, rest, stdout)
	case "ds":
		if err := fs.Parse(rest); err != nil || fs.NArg() > 0 {
			return errUsage
		}
		cfg, err := config.LoadChecked(*cfgPath, *insecure)
		if err != nil {
			return err
		}
		text, err := daemon.DSRecords(cfg, daemon.KeyReader(*insecure))
		if err == nil {
			fmt.Fprint(stdout, text)
		}
		return err
	case "drain", "resume", "status", "shed", "zone":
		return controlMain(cmd, fs, rest, stdout, func() (string, error) {
			cfg, err := config.LoadChecked(*cfgPath, *insecure)
			if err != nil {
				return "", err
			}
			return cfg.Control.Socket, nil
		})
	case "version":
		fmt.Fprintln(stdout, "spdu-haproxy", versionString())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "spdu-haproxy: unknown command %q\n%s", cmd, usage)
		return errUsage
	}
}

// runDaemon runs the daemon until SIGINT or SIGTERM, and reloads it with
// load's configuration on every SIGHUP; a reload that fails is logged and
// the running configuration kept.
func runDaemon(logger zerolog.Logger, cfg *config.Config, opts daemon.Options, load func() (*config.Config, error)) error {
	d, err := daemon.New(cfg, opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				next, err := load()
				if err == nil {
					err = d.Reload(next)
				}
				if err != nil {
					logger.Error().Err(err).Msg("reload failed: keeping the running configuration")
				}
			}
		}
	}()
	return d.Run(ctx)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func newLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("-log-level: %q is not one of debug, info, warn, error", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	default:
		return zerolog.Nop(), fmt.Errorf("-log-format: %q is not json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
