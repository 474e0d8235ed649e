package e2e

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// The tests of this package run the built daemon (testenv.RunWithBinary)
// as a child process against real HAProxy processes, backends and
// resolvers.
func TestMain(m *testing.M) { os.Exit(testenv.RunWithBinary(m)) }

// The daemons in these tests poll every 100 ms with stale_after 500 ms,
// rise 2 and fall 2 (testenv.DaemonConfig's defaults).
const (
	poll       = 100 * time.Millisecond
	staleAfter = 500 * time.Millisecond
)

// Daemon is the spdu-haproxy binary running as a child process.
type Daemon = testenv.Process

// site is one test site and, once started, its daemon.
type site struct {
	*testenv.Site
	Name, IP string
	Daemon   *Daemon
}

// startSite starts a site for o (on o.IP, default 127.0.0.1), with the
// e2e defaults of examples/haproxy.cfg's shape: agent checks every 500 ms,
// a 300 ms connect timeout so the backup server takes over quickly; and,
// unless noDaemon, the daemon.
func startSite(t testing.TB, o testenv.SiteOpts, noDaemon bool) *site {
	t.Helper()
	if o.HAProxy.AgentInter == 0 {
		o.HAProxy.AgentInter = 500 * time.Millisecond
	}
	if o.HAProxy.Connect == 0 {
		o.HAProxy.Connect = 300 * time.Millisecond
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	s := &site{Site: testenv.StartSite(t, o), Name: o.Daemon.Site, IP: o.IP}
	if s.Name == "" {
		s.Name = "alpha"
	}
	if !noDaemon {
		s.Daemon = startDaemon(t, s.CfgPath)
	}
	return s
}

// startDaemon runs `spdu-haproxy run -config cfgPath` with extra arguments
// and stops it at cleanup.
func startDaemon(t testing.TB, cfgPath string, args ...string) *Daemon {
	t.Helper()
	return testenv.StartBinary(t, append([]string{"run", "-config", cfgPath}, args...)...)
}

// stopDaemon sends d SIGTERM and waits until it has exited, failing the
// test when the signal cannot be sent or the daemon is still running 10 s
// later.
func stopDaemon(t testing.TB, d *Daemon) {
	t.Helper()
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon did not exit within 10 s of SIGTERM:\n%s", d.Output())
	}
}

// startDaemonAs runs the daemon as uid (and gid uid).
func startDaemonAs(t *testing.T, cfgPath string, uid uint32) *Daemon {
	t.Helper()
	cmd := testenv.Command(t, "run", "-config", cfgPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	return testenv.StartProcess(t, cmd)
}
