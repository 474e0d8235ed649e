package resolvers

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	unboundBinary      = "/usr/sbin/unbound"
	unboundCheckBinary = "/usr/sbin/unbound-checkconf"
)

// unboundConfig is unbound's configuration: defaults except what a local
// test needs (loopback nameservers, no privileges dropped, no chroot, small
// caches, one thread, logging to stderr) and, with trust anchors, the
// validator.
func unboundConfig(dir, hints string, port int, o Options) string {
	verbosity := 1
	if o.Verbose {
		verbosity = 4
	}
	modules := "iterator"
	if len(o.TrustAnchors) > 0 {
		modules = "validator iterator"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `server:
    interface: %s
    port: %d
    outgoing-interface: %s
    do-not-query-localhost: no
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    root-hints: %q
    username: ""
    chroot: ""
    directory: %q
    pidfile: %q
    do-daemonize: no
    use-syslog: no
    logfile: ""
    log-time-ascii: yes
    verbosity: %d
    num-threads: 1
    so-reuseport: no
    msg-cache-size: 1m
    rrset-cache-size: 2m
    key-cache-size: 1m
    neg-cache-size: 1m
    module-config: %q
`, o.IP, port, o.IP, hints, dir, filepath.Join(dir, "unbound.pid"), verbosity, modules)
	for _, ds := range o.TrustAnchors {
		fmt.Fprintf(&b, "    trust-anchor: \"%s DS %s\"\n", ds.Hdr.Name, dsText(ds))
	}
	if len(o.TrustAnchors) > 0 {
		b.WriteString("    val-log-level: 2\n")
	}
	fmt.Fprintf(&b, "remote-control:\n    control-enable: yes\n    control-interface: %q\n", filepath.Join(dir, "control.sock"))
	return b.String()
}

func setupUnbound(t testing.TB, dir string, h *Hierarchy, o Options) func() *exec.Cmd {
	t.Helper()
	conf := filepath.Join(dir, "unbound.conf")
	text := unboundConfig(dir, h.RootHints, o.Port, o)
	writeFile(t, conf, text)
	if out, err := exec.Command(unboundCheckBinary, conf).CombinedOutput(); err != nil {
		t.Fatalf("unbound-checkconf (Debian package unbound): %v\n%s\n%s", err, out, text)
	}
	return func() *exec.Cmd { return exec.Command(unboundBinary, "-d", "-c", conf) }
}
