package testenv

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Process is a child process started for a test; its combined output is
// kept for assertions and printed when the test fails. It is killed at
// cleanup.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  syncBuffer
	code int // set before done is closed
}

// StartProcess starts cmd (its Stdout and Stderr are set here) and stops it
// with SIGKILL at cleanup.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() {
		cmd.Wait() //nolint:errcheck // the exit code is kept below
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", cmd.Path, p.Output())
		}
	})
	return p
}

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode is the exit code once Done is closed (-1 when killed by a signal).
func (p *Process) ExitCode() int {
	<-p.done
	return p.code
}

// Kill stops the process with SIGKILL and waits for it to exit.
func (p *Process) Kill() {
	p.cmd.Process.Kill() //nolint:errcheck // may have exited already
	<-p.done
}

// Reload writes text to the daemon's configuration file path, sends p
// SIGHUP and waits until its log says the reload was done (want
// "configuration reloaded") or refused (want "reload failed"), failing at
// once when it says the other; it returns the log lines of this reload.
func Reload(t testing.TB, p *Process, path, text, want string) string {
	t.Helper()
	const done, failed = "configuration reloaded", "reload failed"
	other := failed
	if strings.HasPrefix(want, failed) {
		other = done
	}
	mark := len(p.Output())
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "log says "+want, func() bool {
		out := p.Output()[mark:]
		if strings.Contains(out, other) && !strings.Contains(out, want) {
			t.Fatalf("reload: log says %q, want %q:\n%s", other, want, out)
		}
		return strings.Contains(out, want)
	})
	return p.Output()[mark:]
}

// RequireTool returns the path of the command name on PATH, or fails the
// test naming Debian's package that has it (scripts/deps.sh installs every
// package the tests need: make deps).
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian's %s package (scripts/deps.sh does: make deps)", name, debianPackage)
	}
	return p
}
