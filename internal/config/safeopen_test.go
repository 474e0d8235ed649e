package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// nobody is the uid and gid that stand for another, unprivileged user (an
// attacker sharing the host), as in internal/e2e/faults_test.go.
const nobody = 65534

// needRoot skips tests that give files to another user.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown files to another user")
	}
}

// mkdir makes dir with exactly mode (umask aside) and owner uid (-1: the
// running user).
func mkdir(t *testing.T, dir string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	setMode(t, dir, mode, uid)
}

// writeFile writes a file with exactly mode and owner uid (-1: the running
// user).
func writeFile(t *testing.T, p, text string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	setMode(t, p, mode, uid)
}

func setMode(t *testing.T, p string, mode os.FileMode, uid int) {
	t.Helper()
	if uid >= 0 {
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFileSafetyDirectories builds trees around a file that is itself
// fine (0644, the running user's) and checks that a directory on the way
// which others could change makes the check fail, naming that directory and
// the rule, as sshd's StrictModes does, with the sticky exception of /tmp.
// Before the directories were checked, every case passed.
func TestCheckFileSafetyDirectories(t *testing.T) {
	needRoot(t)
	hint := " (or pass -allow-insecure-config for development)"
	for _, tc := range []treeCase{
		{
			name:  "safe directories",
			build: fileIn("etc", 0o755, -1, "c.toml", 0o644, -1),
		},
		{
			name:  "world-writable directory",
			build: fileIn("shared", 0o777, -1, "c.toml", 0o644, -1),
			want:  "BASE/shared/c.toml: directory BASE/shared has mode 0777, which lets group or others replace what is in it; run chmod go-w BASE/shared" + hint,
		},
		{
			name:  "group-writable directory",
			build: fileIn("grp", 0o775, -1, "c.toml", 0o644, -1),
			want:  "BASE/grp/c.toml: directory BASE/grp has mode 0775, which lets group or others replace what is in it; run chmod go-w BASE/grp" + hint,
		},
		{
			name: "world-writable grandparent",
			build: func(t *testing.T, base string) string {
				mkdir(t, base+"/a", 0o777, -1)
				mkdir(t, base+"/a/b", 0o755, -1)
				writeFile(t, base+"/a/b/c.toml", "x", 0o644, -1)
				return base + "/a/b/c.toml"
			},
			want: "BASE/a/b/c.toml: directory BASE/a has mode 0777, which lets group or others replace what is in it; run chmod go-w BASE/a" + hint,
		},
		{
			name:    "directory of another user",
			build:   fileIn("theirs", 0o755, nobody, "c.toml", 0o644, -1),
			want:    "BASE/theirs/c.toml: directory BASE/theirs is owned by another user: uid 65534, not root or the running user (uid 0); run chown root BASE/theirs" + hint,
			foreign: true,
		},
		{
			name:  "sticky world-writable directory, own file",
			build: fileIn("tmp", 0o777|os.ModeSticky, -1, "c.toml", 0o644, -1),
		},
		{
			name:    "sticky world-writable directory, another user's file",
			build:   fileIn("tmp", 0o777|os.ModeSticky, -1, "c.toml", 0o644, nobody),
			want:    "BASE/tmp/c.toml: owned by another user: uid 65534, not root or the running user (uid 0); run chown root BASE/tmp/c.toml" + hint,
			foreign: true,
		},
		{
			name:    "sticky world-writable directory of another user",
			build:   fileIn("tmp", 0o777|os.ModeSticky, nobody, "c.toml", 0o644, -1),
			want:    "BASE/tmp/c.toml: directory BASE/tmp is owned by another user: uid 65534, not root or the running user (uid 0); run chown root BASE/tmp" + hint,
			foreign: true,
		},
		{
			name: "another user's symlink in a sticky directory",
			build: func(t *testing.T, base string) string {
				mkdir(t, base+"/etc", 0o755, -1)
				writeFile(t, base+"/etc/c.toml", "x", 0o644, -1)
				mkdir(t, base+"/tmp", 0o777|os.ModeSticky, -1)
				symlink(t, base+"/etc/c.toml", base+"/tmp/c.toml", nobody)
				return base + "/tmp/c.toml"
			},
			want:    "BASE/tmp/c.toml: symbolic link BASE/tmp/c.toml: owned by another user: uid 65534, in BASE/tmp, which others may write; only a link owned by root or the running user (uid 0) is followed there" + hint,
			foreign: true,
		},
		{
			name: "own symlink in a sticky directory",
			build: func(t *testing.T, base string) string {
				mkdir(t, base+"/etc", 0o755, -1)
				writeFile(t, base+"/etc/c.toml", "x", 0o644, -1)
				mkdir(t, base+"/tmp", 0o777|os.ModeSticky, -1)
				symlink(t, "../etc/c.toml", base+"/tmp/c.toml", -1)
				return base + "/tmp/c.toml"
			},
		},
		{
			name: "symlink into a world-writable directory",
			build: func(t *testing.T, base string) string {
				mkdir(t, base+"/etc", 0o755, -1)
				mkdir(t, base+"/shared", 0o777, -1)
				writeFile(t, base+"/shared/c.toml", "x", 0o644, -1)
				symlink(t, base+"/shared/c.toml", base+"/etc/c.toml", -1)
				return base + "/etc/c.toml"
			},
			want: "BASE/etc/c.toml: directory BASE/shared has mode 0777, which lets group or others replace what is in it; run chmod go-w BASE/shared" + hint,
		},
		{
			name: "dot-dot through a symlinked directory is resolved physically",
			build: func(t *testing.T, base string) string {
				// BASE/etc/link -> ../shared/sub, so link/.. is
				// BASE/shared (world-writable), not BASE/etc.
				mkdir(t, base+"/etc", 0o755, -1)
				mkdir(t, base+"/shared", 0o777, -1)
				mkdir(t, base+"/shared/sub", 0o755, -1)
				writeFile(t, base+"/shared/c.toml", "x", 0o644, -1)
				writeFile(t, base+"/etc/c.toml", "x", 0o644, -1)
				symlink(t, "../shared/sub", base+"/etc/link", -1)
				return base + "/etc/link/../c.toml"
			},
			want: "BASE/etc/link/../c.toml: directory BASE/shared has mode 0777, which lets group or others replace what is in it; run chmod go-w BASE/shared" + hint,
		},
		{
			name:  "world-writable file in safe directories",
			build: fileIn("etc", 0o755, -1, "c.toml", 0o666, -1),
			want:  "BASE/etc/c.toml: mode 0666 lets group or others write it; run chmod go-w BASE/etc/c.toml" + hint,
		},
	} {
		runTreeCase(t, tc, "CheckFileSafety", func(t *testing.T, p string) error {
			err := CheckFileSafety(p)
			// OpenSafe and ReadSafe apply the same rules.
			if _, _, rerr := ReadSafe(p); (rerr == nil) != (err == nil) {
				t.Errorf("ReadSafe: %v; CheckFileSafety: %v", rerr, err)
			}
			return err
		})
	}
}

// treeCase is one case of the file and directory rules: build makes a
// tree under base and returns the path to check; want is the error with
// base written as "BASE" ("" for none); foreign says whether it wraps
// ErrForeignOwner.
type treeCase struct {
	name    string
	build   func(t *testing.T, base string) string
	want    string
	foreign bool
}

// fileIn builds base/dir (mode dirMode, owner dirUID; -1 is the running
// user) holding file (mode, owner uid), and returns the file's path.
func fileIn(dir string, dirMode os.FileMode, dirUID int, file string, mode os.FileMode, uid int) func(*testing.T, string) string {
	return func(t *testing.T, base string) string {
		mkdir(t, base+"/"+dir, dirMode, dirUID)
		writeFile(t, base+"/"+dir+"/"+file, "#!/bin/sh\n", mode, uid)
		return base + "/" + dir + "/" + file
	}
}

// runTreeCase runs tc as a subtest: it builds the tree in a fresh
// directory, calls check (named name in messages) on the path, and
// compares the error with tc's.
func runTreeCase(t *testing.T, tc treeCase, name string, check func(t *testing.T, p string) error) {
	t.Run(tc.name, func(t *testing.T) {
		base := t.TempDir()
		err := check(t, tc.build(t, base))
		got := ""
		if err != nil {
			got = strings.ReplaceAll(err.Error(), base, "BASE")
		}
		if got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, tc.want)
		}
		if errors.Is(err, ErrForeignOwner) != tc.foreign {
			t.Errorf("errors.Is(err, ErrForeignOwner) = %v; want %v", !tc.foreign, tc.foreign)
		}
	})
}

// symlink makes a symbolic link at p to target, owned by uid (-1: the
// running user).
func symlink(t *testing.T, target, p string, uid int) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadSafeErrors covers the failures that are not about owners and
// modes.
func TestReadSafeErrors(t *testing.T) {
	base := t.TempDir()
	if err := os.Symlink("loop", base+"/loop"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+"/big", make([]byte, MaxSafeFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(base+"/dir", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadSafe(base + "/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v; want fs.ErrNotExist", err)
	}
	if _, _, err := ReadSafe(base + "/loop"); err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("symlink loop: %v; want ELOOP", err)
	}
	if _, _, err := ReadSafe(base + "/big"); err == nil || !strings.Contains(err.Error(), "bytes, more than the 1048576") {
		t.Errorf("file over MaxSafeFileSize: %v", err)
	}
	if _, _, err := ReadSafe(base + "/dir"); err == nil || err.Error() != base+"/dir: not a regular file" {
		t.Errorf("directory: %v; want not a regular file", err)
	}
	if _, _, err := ReadSafe(""); err == nil {
		t.Error("empty path passed")
	}
}

// TestReadSafeRelativePath checks that a relative path is taken from the
// working directory.
func TestReadSafeRelativePath(t *testing.T) {
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "c.toml"), []byte("rel"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(base)
	b, _, err := ReadSafe("./c.toml")
	if err != nil || string(b) != "rel" {
		t.Errorf("ReadSafe(./c.toml) = %q, %v; want \"rel\"", b, err)
	}
}

// TestReadSafeSwapRace swaps, as fast as it can, a safe file and an unsafe
// one (world-writable, or another user's) at one path while reading it, and
// checks that no read returns the unsafe file's bytes: the check and the
// read are on one descriptor. Checking the path and then reading it again
// (the code before ReadSafe: CheckFileSafety then os.ReadFile) returns the
// unsafe bytes within a few hundred reads.
func TestReadSafeSwapRace(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name string
		mode os.FileMode
		uid  int
	}{
		{"world-writable", 0o666, -1},
		{"another user's", 0o644, nobody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			good, bad, p := dir+"/good", dir+"/bad", dir+"/c.toml"
			writeFile(t, good, "good", 0o644, -1)
			writeFile(t, bad, "bad", tc.mode, tc.uid)
			writeFile(t, p, "good", 0o644, -1)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			var swapErr error
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					src := good
					if i%2 == 1 {
						src = bad
					}
					// link then rename: p always names a whole file.
					tmp := dir + "/.swap"
					if err := os.Link(src, tmp); err != nil {
						swapErr = err
						return
					}
					if err := os.Rename(tmp, p); err != nil {
						swapErr = err
						return
					}
				}
			})
			var accepted, refused, leaked int
			deadline := time.Now().Add(time.Second)
			for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
				b, fi, err := ReadSafe(p)
				switch {
				case err != nil:
					refused++
				case string(b) != "good" || fi.Mode().Perm() != 0o644:
					leaked++
				default:
					accepted++
				}
			}
			close(stop)
			wg.Wait()
			if swapErr != nil {
				t.Fatal(swapErr)
			}
			t.Logf("%d reads accepted the safe file, %d refused the unsafe one, %d returned the unsafe one", accepted, refused, leaked)
			if leaked > 0 {
				t.Errorf("%d reads returned the bytes of the unsafe file", leaked)
			}
			if accepted == 0 {
				t.Error("no read accepted the safe file")
			}
		})
	}
}

// TestLoadChecked checks that LoadChecked decodes like Load and refuses
// what CheckFileSafety refuses, naming the file.
func TestLoadChecked(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "spdu-haproxy.toml")
	writeFile(t, p, minimal, 0o640, -1)
	want, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadChecked(p, false)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("LoadChecked (-Load +LoadChecked):\n%s", d)
	}
	writeFile(t, p, "bogus = 1\n"+minimal, 0o640, -1)
	if _, err := LoadChecked(p, false); err == nil || err.Error() != "config "+p+`: unknown key "bogus"` {
		t.Errorf("unknown key: %v", err)
	}
	setMode(t, p, 0o646, -1)
	if _, err := LoadChecked(p, false); err == nil || !strings.Contains(err.Error(), "mode 0646 lets group or others write it") {
		t.Errorf("world-writable file: %v", err)
	}
}

// TestCheckExecutable checks notify.exec's rule: a command is run only if
// root or the running user owns it, nobody else may write it or the
// directories on the way to it, and its owner may execute it. Before this
// rule the daemon ran any command it was given.
func TestCheckExecutable(t *testing.T) {
	needRoot(t)
	hint := " (or pass -allow-insecure-config for development)"
	for _, tc := range []treeCase{
		{
			name:  "root's 0755 command",
			build: fileIn("bin", 0o755, -1, "notify", 0o755, -1),
		},
		{
			name:  "execute-only command",
			build: fileIn("bin", 0o711, -1, "notify", 0o711, -1),
		},
		{
			name:  "world-writable command in a world-writable directory",
			build: fileIn("drop", 0o777, -1, "notify", 0o777, -1),
			want:  "BASE/drop/notify: directory BASE/drop has mode 0777, which lets group or others replace what is in it; run chmod go-w BASE/drop" + hint,
		},
		{
			name:  "world-writable command",
			build: fileIn("bin", 0o755, -1, "notify", 0o757, -1),
			want:  "BASE/bin/notify: mode 0757 lets group or others write it; run chmod go-w BASE/bin/notify" + hint,
		},
		{
			name:    "another user's command",
			build:   fileIn("bin", 0o755, -1, "notify", 0o755, nobody),
			want:    "BASE/bin/notify: owned by another user: uid 65534, not root or the running user (uid 0); run chown root BASE/bin/notify" + hint,
			foreign: true,
		},
		{
			name:  "not executable",
			build: fileIn("bin", 0o755, -1, "notify", 0o644, -1),
			want:  "BASE/bin/notify: mode 0644: its owner may not execute it; run chmod u+x BASE/bin/notify",
		},
		{
			name: "missing",
			build: func(t *testing.T, base string) string {
				return base + "/notify"
			},
			want: "check BASE/notify: stat BASE/notify: no such file or directory",
		},
	} {
		runTreeCase(t, tc, "CheckExecutable", func(_ *testing.T, p string) error { return CheckExecutable(p) })
	}
}
