package packaging

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

var (
	// repoRoot is the repository's top directory.
	repoRoot string
	// distDir receives the packages built by the first test that needs them.
	distDir string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "spdu-packaging-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	distDir = filepath.Join(tmp, "dist")
	// The metrics test runs the built daemon (the package tests use the
	// packaged one).
	return testenv.RunWithBinary(m)
}

// builtPackages are the packages scripts/package.sh built, once per test
// binary.
type builtPackages struct {
	// Deb and RPM are the package files.
	Deb, RPM string
	// Version is the upstream version (without the package release), which
	// `spdu-haproxy version` prints.
	Version string
	// Took is how long the build took.
	Took time.Duration
}

var (
	packagesOnce sync.Once
	packagesErr  error
	built        builtPackages
)

// packages builds the .deb and .rpm with scripts/package.sh (what `make
// package` runs) on first use, with the script's default version, and
// returns them.
func packages(t *testing.T) builtPackages {
	t.Helper()
	packagesOnce.Do(func() { built, packagesErr = buildPackages() })
	if packagesErr != nil {
		t.Fatal(packagesErr)
	}
	return built
}

func buildPackages() (builtPackages, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "scripts/package.sh")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "DIST="+distDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return builtPackages{}, fmt.Errorf("scripts/package.sh: %w\n%s", err, out)
	}
	b := builtPackages{Took: time.Since(start)}
	for _, p := range []struct {
		dst  *string
		glob string
	}{{&b.Deb, "spdu-haproxy_*.deb"}, {&b.RPM, "spdu-haproxy-*.rpm"}} {
		m, _ := filepath.Glob(filepath.Join(distDir, p.glob))
		if len(m) != 1 {
			return b, fmt.Errorf("%s in %s: found %v, want one package", p.glob, distDir, m)
		}
		*p.dst = m[0]
	}
	v, err := exec.Command("dpkg-deb", "-f", b.Deb, "Version").Output()
	if err != nil {
		return b, fmt.Errorf("dpkg-deb -f Version: %w", err)
	}
	full := strings.TrimSpace(string(v))
	upstream, release, ok := strings.Cut(full, "-")
	if !ok || release != "1" {
		return b, fmt.Errorf("package version %q: want UPSTREAM-1", full)
	}
	b.Version = upstream
	return b, nil
}

// run runs a command with a deadline and returns its stdout and stderr.
func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// extractDeb unpacks the .deb's files into a new temporary directory (the
// files as dpkg-deb -x writes them, without running any script).
func extractDeb(t *testing.T, deb string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	return dir
}
