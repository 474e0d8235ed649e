package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// TestDrainStateUnwritable: fault 8. The daemon runs as nobody and cannot
// write its state file (its directory belongs to root). A drain still
// withdraws the zone at once, the command reports the error and exits
// non-zero, and status shows the site drained: nothing is silently lost.
func TestDrainStateUnwritable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Fatal("this test runs the daemon as nobody and so must run as root (CI does)")
	}
	s := startSite(t, testenv.SiteOpts{}, true)
	if err := os.Chmod(s.HAProxy.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	dir := testenv.TempDir(t)
	ctlDir, stateDir := filepath.Join(dir, "run"), filepath.Join(dir, "state")
	for _, d := range []string{ctlDir, stateDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(ctlDir, 65534, 65534); err != nil { // the socket may be created; the state may not
		t.Fatal(err)
	}
	for _, p := range []string{dir, s.HAProxy.Dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(s.CfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text = regexp.MustCompile(`(?m)^socket = ".*/control\.sock"`).ReplaceAll(text, []byte(`socket = "`+ctlDir+`/control.sock"`))
	text = regexp.MustCompile(`(?m)^state_file = ".*"`).ReplaceAll(text, []byte(`state_file = "`+stateDir+`/state.json"`))
	cfgPath := filepath.Join(dir, "alpha.toml")
	if err := os.WriteFile(cfgPath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	startDaemonAs(t, cfgPath, 65534)
	testenv.Eventually(t, 10*time.Second, "served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })

	code, out := testenv.RunBinary(t, "drain", "-config", cfgPath, "-reason", "disk test")
	if code == 0 {
		t.Errorf("drain with an unwritable state file exited 0: %s", out)
	}
	if !strings.Contains(out, "permission denied") {
		t.Errorf("drain output does not report the state file error: %s", out)
	}
	if rc := testenv.Rcode(s.DNSAddr); rc != dns.RcodeRefused {
		t.Errorf("rcode %d after the drain, want REFUSED: a failed save must still withdraw", rc)
	}
	if code, st := testenv.RunBinary(t, "status", "-config", cfgPath); code != 0 || !strings.Contains(st, "disk test") {
		t.Errorf("status after the failed save: exit %d\n%s", code, st)
	}
	t.Logf("drain with an unwritable state file: %s", strings.TrimSpace(out))
}
