package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServiceFiles checks the example service files: the systemd unit with
// systemd-analyze verify (with this test binary standing in for the
// installed daemon), the FreeBSD rc.d script with sh -n.
func TestServiceFiles(t *testing.T) {
	unit, err := os.ReadFile("../../examples/systemd/spdu-haproxy.service")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "spdu-haproxy.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/spdu-haproxy", exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: install Debian's systemd package (.ci/run does)")
	}
	cmd := exec.Command(analyze, "verify", "--man=no", p)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=warning")
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if out, err := exec.Command("sh", "-n", "../../examples/freebsd/spdu_haproxy").CombinedOutput(); err != nil {
		t.Errorf("sh -n rc.d script: %v\n%s", err, out)
	}
}
