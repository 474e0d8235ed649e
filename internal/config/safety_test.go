package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// fakeInfo is a FileInfo with a chosen mode and owner, for the rules that a
// test running as root cannot produce with real files (another owner).
type fakeInfo struct {
	mode fs.FileMode
	uid  uint32
}

func (f fakeInfo) Name() string       { return "spdu-haproxy.toml" }
func (f fakeInfo) Size() int64        { return 1 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: f.uid} }

func TestCheckModeTable(t *testing.T) {
	const p = "/etc/spdu-haproxy/spdu-haproxy.toml"
	for _, tc := range []struct {
		name string
		fi   fakeInfo
		euid int
		want string
	}{
		{"root 0640", fakeInfo{0o640, 0}, 1000, ""},
		{"root 0600", fakeInfo{0o600, 0}, 0, ""},
		{"running user 0644", fakeInfo{0o644, 1000}, 1000, ""},
		{"root 0400", fakeInfo{0o400, 0}, 1000, ""},
		{"group writable", fakeInfo{0o660, 0}, 1000, p + ": mode 0660 lets group or others write it; run chmod go-w " + p + " (or pass -allow-insecure-config for development)"},
		{"world writable", fakeInfo{0o646, 0}, 1000, p + ": mode 0646 lets group or others write it; run chmod go-w " + p + " (or pass -allow-insecure-config for development)"},
		{"other owner", fakeInfo{0o600, 1001}, 1000, p + ": owned by another user: uid 1001, not root or the running user (uid 1000); run chown root " + p + " (or pass -allow-insecure-config for development)"},
		{"directory", fakeInfo{fs.ModeDir | 0o755, 0}, 0, p + ": not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMode(p, tc.fi, tc.euid)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("checkMode:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestCheckFileSafetyRealFiles runs the check on real files.
func TestCheckFileSafetyRealFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	for p, mode := range map[string]os.FileMode{good: 0o640, bad: 0o666} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckFileSafety(good); err != nil {
		t.Errorf("0640 file of the running user: %v", err)
	}
	if err := CheckFileSafety(bad); err == nil {
		t.Error("0666 file passed the check")
	}
	if err := CheckFileSafety(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file passed the check")
	}
}
