package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInsecureConfigRefused: run and check refuse a group-writable
// configuration, cookie secret or state file unless -allow-insecure-config
// is given.
func TestInsecureConfigRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "spdu.toml")
	text := "site = \"alpha\"\n[haproxy]\nbackend = \"api\"\n[dns]\nzone = \"pool.domain.tld\"\nnameservers = [\"ns.domain.tld.\"]\n[dns.records.api]\na = [\"1.2.3.4\"]\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o664); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "-config", p}, {"run", "-config", p}} {
		var out, errOut strings.Builder
		if code := realMain(args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "mode 0664 lets group or others write it") {
			t.Errorf("%v: exit %d, stderr %q; want 1 and the mode named", args, code, errOut.String())
		}
	}
	var out, errOut strings.Builder
	if code := realMain([]string{"check", "-allow-insecure-config", "-config", p}, &out, &errOut); code != 0 {
		t.Errorf("check -allow-insecure-config: exit %d, stderr %q", code, errOut.String())
	}

	// The same rule for the cookie secret and the drain state file, named
	// by their keys; a state file that does not exist yet is fine.
	dir := t.TempDir()
	secret, state := filepath.Join(dir, "cookie.key"), filepath.Join(dir, "state.json")
	if err := os.WriteFile(secret, []byte("00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := strings.Replace(text, "[dns]\n", fmt.Sprintf("[dns]\ncookie_secret_file = %q\n", secret), 1) +
		fmt.Sprintf("[control]\nstate_file = %q\n", state)
	if err := os.WriteFile(p, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := realMain([]string{"check", "-config", p}, io.Discard, &errOut); code != 0 {
		t.Fatalf("check with safe side files and no state file yet: exit %d, stderr %q", code, errOut.String())
	}
	// check reads the side files as run does: a safe but malformed
	// cookie secret fails it.
	if err := os.WriteFile(secret, []byte("not hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var badOut strings.Builder
	if code := realMain([]string{"check", "-config", p}, io.Discard, &badOut); code != 1 || !strings.Contains(badOut.String(), "CookieSecretFile "+secret+": want 32 hex digits") {
		t.Errorf("check with a malformed cookie secret: exit %d, stderr %q; want 1 naming the file", code, badOut.String())
	}
	if err := os.WriteFile(secret, []byte("00112233445566778899aabbccddeeff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte(`{"version":1,"drained":false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, key string }{{secret, "dns.cookie_secret_file"}, {state, "control.state_file"}} {
		if err := os.Chmod(c.file, 0o620); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"check", "-config", p}, {"run", "-config", p}} {
			var errOut strings.Builder
			if code := realMain(args, io.Discard, &errOut); code != 1 || !strings.Contains(errOut.String(), "unsafe "+c.key) ||
				!strings.Contains(errOut.String(), "mode 0620 lets group or others write it") {
				t.Errorf("%v with a group-writable %s: exit %d, stderr %q", args, c.key, code, errOut.String())
			}
		}
		if code := realMain([]string{"check", "-allow-insecure-config", "-config", p}, io.Discard, io.Discard); code != 0 {
			t.Errorf("check -allow-insecure-config with a group-writable %s: exit %d", c.key, code)
		}
		if err := os.Chmod(c.file, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// A state file the service user wrote, seen by root: check warns,
	// run refuses (the daemon itself must own it).
	if err := os.Chown(state, 65534, 65534); err != nil {
		t.Fatalf("chown (the tests run as root): %v", err)
	}
	var warnOut strings.Builder
	if code := realMain([]string{"check", "-config", p}, io.Discard, &warnOut); code != 0 ||
		!strings.Contains(warnOut.String(), "warning: unsafe control.state_file") {
		t.Errorf("check with a state file of another owner: exit %d, stderr %q; want 0 and a warning", code, warnOut.String())
	}
	var runOut strings.Builder
	if code := realMain([]string{"run", "-config", p}, io.Discard, &runOut); code != 1 || !strings.Contains(runOut.String(), "owned by another user") {
		t.Errorf("run with a state file of another owner: exit %d, stderr %q", code, runOut.String())
	}

	// notify.exec: a command others may replace is refused by name (issue
	// 15 item 6); once safe, check accepts it.
	if err := os.Chown(state, 0, 0); err != nil {
		t.Fatal(err)
	}
	cmdDir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(cmdDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cmdDir, 0o777); err != nil { // umask-proof: world-writable, not sticky
		t.Fatal(err)
	}
	script := filepath.Join(cmdDir, "notify")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	withNotify := full + fmt.Sprintf("[notify]\nexec = [%q]\n", script)
	if err := os.WriteFile(p, []byte(withNotify), 0o600); err != nil {
		t.Fatal(err)
	}
	var notifyOut strings.Builder
	if code := realMain([]string{"check", "-config", p}, io.Discard, &notifyOut); code != 1 ||
		!strings.Contains(notifyOut.String(), "unsafe notify.exec") {
		t.Errorf("check with notify.exec in a world-writable directory: exit %d, stderr %q; want 1 naming notify.exec", code, notifyOut.String())
	}
	if err := os.Chmod(cmdDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if code := realMain([]string{"check", "-config", p}, io.Discard, &notifyOut); code != 0 {
		t.Errorf("check with a safe notify.exec: exit %d, stderr %q", code, notifyOut.String())
	}
}
