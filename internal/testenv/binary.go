package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// daemonBinary is the spdu-haproxy binary RunWithBinary built.
var daemonBinary string

// RunWithBinary is the TestMain of a package whose tests run the built
// daemon: it builds cmd/spdu-haproxy once into a temporary directory (mode
// 0755, so a test may run it as another user), runs the tests and removes
// it. Use it as os.Exit(testenv.RunWithBinary(m)).
//
// SPDU_TEST_BINARY names a prebuilt binary to run instead, for instance an
// older commit's, to show that a test fails without a fix.
func RunWithBinary(m *testing.M) int {
	if bin := os.Getenv("SPDU_TEST_BINARY"); bin != "" {
		daemonBinary = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "spdu-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	daemonBinary = filepath.Join(dir, "spdu-haproxy")
	build := exec.Command("go", "build", "-o", daemonBinary, "github.com/spdu/spdu-haproxy/cmd/spdu-haproxy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build spdu-haproxy:", err)
		return 1
	}
	return m.Run()
}

// Binary returns the path of the built daemon; it fails the test outside
// RunWithBinary.
func Binary(t testing.TB) string {
	t.Helper()
	if daemonBinary == "" {
		t.Fatal("no daemon binary: the package's TestMain must call testenv.RunWithBinary")
	}
	return daemonBinary
}

// Command returns an exec.Cmd of the built daemon with args, for a test
// that sets more (a user to run as); start it with StartProcess.
func Command(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	return exec.Command(Binary(t), args...)
}

// StartBinary runs the built daemon with args (typically "run", "-config",
// PATH) as a child process, stopped at cleanup.
func StartBinary(t testing.TB, args ...string) *Process {
	t.Helper()
	return StartProcess(t, exec.Command(Binary(t), args...))
}

// runBinaryTimeout bounds one RunBinary command; the short commands take
// well under a second.
const runBinaryTimeout = 20 * time.Second

// RunBinary runs a short command of the built daemon (check, status,
// drain, ...) to its end and returns its exit code and combined output.
// It fails the test when the command does not end within 20 s.
func RunBinary(t testing.TB, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runBinaryTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.WaitDelay = time.Second // a leftover child holding the output pipe must not hold us
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("run %s %s: not done within %s (%v):\n%s", Binary(t), strings.Join(args, " "), runBinaryTimeout, err, out)
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("run %s %s: %v", Binary(t), strings.Join(args, " "), err)
	}
	return 0, string(out)
}
