package daemon

import (
	"context"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/spdu/spdu-haproxy/internal/site"
)

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and logs
// both, so that the listeners' connection caps, not the default soft
// limit of 1024, bound the descriptors: the runtime API poll and DNS keep
// theirs whatever clients do.
func raiseFileLimit(logger zerolog.Logger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		logger.Warn().Err(err).Msg("read RLIMIT_NOFILE")
		return
	}
	soft := lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			logger.Warn().Err(err).Uint64("soft", soft).Uint64("hard", lim.Max).Msg("raise RLIMIT_NOFILE")
			return
		}
	}
	logger.Info().Uint64("was", soft).Uint64("now", lim.Cur).Msg("open file limit")
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
	if ok, err := sd.SdNotify(false, sd.SdNotifyReady); err != nil {
		logger.Warn().Err(err).Msg("sd_notify READY failed")
	} else if ok {
		logger.Info().Msg("told systemd READY")
	}
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return nil
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	last := poller.Snapshot().Polls
	for {
		select {
		case <-ctx.Done():
			sd.SdNotify(false, sd.SdNotifyStopping) //nolint:errcheck // best effort at exit
			return nil
		case <-tick.C:
			if n := poller.Snapshot().Polls; n != last {
				last = n
				sd.SdNotify(false, sd.SdNotifyWatchdog) //nolint:errcheck // systemd restarts us if pings stop
			}
		}
	}
}
