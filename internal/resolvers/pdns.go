package resolvers

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	pdnsBinary        = "/usr/sbin/pdns_recursor"
	pdnsControlBinary = "/usr/bin/rec_control"
)

// pdnsConfig is recursor.conf: defaults except what a local test needs
// (dont-query emptied, since its default lists 127.0.0.0/8; the local root
// hints; one thread; small caches; no security poll; logging to stderr with
// the trace of failed resolutions) and the DNSSEC mode. Without trust
// anchors it is process-no-validate: the default "process" validates for
// clients that set DO or AD, against the real root's anchor, which the
// unsigned local root fails.
func pdnsConfig(dir, hints string, port int, o Options) string {
	dnssec, trace := "process-no-validate", "fail"
	if len(o.TrustAnchors) > 0 {
		dnssec = "validate"
	}
	if o.Verbose {
		trace = "yes"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `local-address=%s
local-port=%d
query-local-address=%s
dont-query=
allow-from=127.0.0.0/8
hint-file=%s
socket-dir=%s
daemon=no
write-pid=no
disable-syslog=yes
log-timestamp=yes
threads=1
pdns-distributes-queries=no
max-cache-entries=20000
max-packetcache-entries=20000
security-poll-suffix=
dnssec=%s
trace=%s
`, o.IP, port, o.IP, hints, dir, dnssec, trace)
	if len(o.TrustAnchors) > 0 {
		fmt.Fprintf(&b, "lua-config-file=%s\n", filepath.Join(dir, "ta.lua"))
	}
	return b.String()
}

// pdnsTrustAnchors is the Lua configuration that replaces the built-in root
// anchor by the given ones.
func pdnsTrustAnchors(o Options) string {
	var b strings.Builder
	b.WriteString("clearTA()\n")
	for _, ds := range o.TrustAnchors {
		fmt.Fprintf(&b, "addTA(%q, %q)\n", ds.Hdr.Name, dsText(ds))
	}
	return b.String()
}

func setupPowerDNS(t testing.TB, dir string, h *Hierarchy, o Options) func() *exec.Cmd {
	t.Helper()
	text := pdnsConfig(dir, h.RootHints, o.Port, o)
	writeFile(t, filepath.Join(dir, "recursor.conf"), text)
	if len(o.TrustAnchors) > 0 {
		writeFile(t, filepath.Join(dir, "ta.lua"), pdnsTrustAnchors(o))
	}
	if out, err := exec.Command(pdnsBinary, "--config-dir="+dir, "--config=check").CombinedOutput(); err != nil {
		t.Fatalf("pdns_recursor --config=check (Debian package pdns-recursor): %v\n%s\n%s", err, out, text)
	}
	return func() *exec.Cmd { return exec.Command(pdnsBinary, "--config-dir="+dir) }
}

// Control runs rec_control with args against a PowerDNS Recursor (for
// example "dump-throttlemap", "-") and returns its output; it fails the
// test for any other kind, or when rec_control fails or takes over 10 s.
func (r *Resolver) Control(t testing.TB, args ...string) string {
	t.Helper()
	if r.Kind != PowerDNS {
		t.Fatalf("Control: %s has no rec_control", r.Kind)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, pdnsControlBinary, append([]string{"--socket-dir=" + r.Dir, "--timeout=5"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("rec_control %v: %v\n%s", args, err, out)
	}
	return string(out)
}
