package packaging

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// scratchRoot is a throwaway copy of this machine's root file system in
// which packages are really installed: an overlay of / whose writable layer
// is a tmpfs, mounted in a private mount namespace that a helper process
// holds open. Nothing written in it reaches the machine, and it all goes
// away with the helper, which exits when the test ends or its stdin closes
// (the test binary died).
type scratchRoot struct {
	ns  string // the helper's mount namespace, /proc/PID/ns/mnt
	dir string // the overlay's mount point, seen inside the namespace
}

// mountScript runs in the new mount namespace: it mounts the overlay at
// $1/root, then waits for its stdin to close.
const mountScript = `set -e
base=$1
mount -t tmpfs -o mode=0755 spdu-scratch "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
mount -t proc proc "$base/root/proc"
mount --rbind /dev "$base/root/dev"
echo scratch root ready
exec cat >/dev/null
`

func newScratchRoot(t *testing.T) *scratchRoot {
	t.Helper()
	testenv.RequireTool(t, "unshare", "util-linux")
	testenv.RequireTool(t, "nsenter", "util-linux")
	if os.Geteuid() != 0 {
		t.Fatal("the install tests mount an overlay of / in their own mount namespace and need root (CI runs as root)")
	}
	base, err := os.MkdirTemp("", "spdu-scratch-root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(base) }) // runs after the helper is gone: an empty directory then
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", mountScript, "sh", base)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProcess(t, cmd)
	t.Cleanup(func() { stdin.Close() })
	testenv.Eventually(t, 10*time.Second, "scratch root mounted", func() bool {
		select {
		case <-p.Done():
			t.Fatalf("mounting the scratch root failed:\n%s", p.Output())
		default:
		}
		return strings.Contains(p.Output(), "scratch root ready")
	})
	return &scratchRoot{ns: filepath.Join("/proc", strconv.Itoa(p.Pid()), "ns/mnt"), dir: filepath.Join(base, "root")}
}

// copyIn copies a file of the machine into the scratch root's /tmp and
// returns its path there.
func (r *scratchRoot) copyIn(t *testing.T, hostPath string) string {
	t.Helper()
	inside := "/tmp/" + filepath.Base(hostPath)
	if out, err := exec.Command("nsenter", "--mount="+r.ns, "--", "cp", hostPath, r.dir+inside).CombinedOutput(); err != nil {
		t.Fatalf("copy %s into the scratch root: %v\n%s", hostPath, err, out)
	}
	return inside
}

// sh runs a shell script (sh -e) chrooted into the scratch root with a
// minimal environment and returns its combined output.
func (r *scratchRoot) sh(t *testing.T, script string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--mount="+r.ns, "--", "chroot", r.dir, "/bin/sh", "-ec", script)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive",
		"SYSTEMD_LOG_LEVEL=warning",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs script and fails the test with what (and the output) if it
// fails.
func (r *scratchRoot) must(t *testing.T, what, script string) string {
	t.Helper()
	out, err := r.sh(t, script)
	if err != nil {
		t.Fatalf("%s: %v\n$ %s\n%s", what, err, script, out)
	}
	return out
}
