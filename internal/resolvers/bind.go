package resolvers

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	namedBinary      = "/usr/sbin/named"
	namedCheckBinary = "/usr/bin/named-checkconf"
)

// bindConfig is named's configuration: defaults except what a local test
// needs (the local root hints, listening on 127.0.0.1 and querying from
// o.IP, no rndc channel so that several instances never compete for
// port 953, a small cache) and the validation setting. named has no rule
// against querying loopback nameservers.
func bindConfig(dir, hints string, port int, o Options) string {
	validation := "no"
	if len(o.TrustAnchors) > 0 {
		validation = "yes"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `options {
    directory %q;
    pid-file %q;
    session-keyfile %q;
    managed-keys-directory %q;
    listen-on port %d { 127.0.0.1; };
    listen-on-v6 { none; };
    query-source address %s;
    recursion yes;
    allow-query { 127.0.0.0/8; };
    allow-recursion { 127.0.0.0/8; };
    dnssec-validation %s;
    max-cache-size 16m;
    empty-zones-enable no;
};
controls { };
zone "." { type hint; file %q; };
`, dir, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), dir,
		port, o.IP, validation, hints)
	if len(o.TrustAnchors) > 0 {
		b.WriteString("trust-anchors {\n")
		for _, ds := range o.TrustAnchors {
			fmt.Fprintf(&b, "    %q static-ds %d %d %d %q;\n", ds.Hdr.Name, ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
		}
		b.WriteString("};\n")
	}
	return b.String()
}

func setupBIND(t testing.TB, dir string, h *Hierarchy, o Options) func() *exec.Cmd {
	t.Helper()
	conf := filepath.Join(dir, "named.conf")
	text := bindConfig(dir, h.RootHints, o.Port, o)
	writeFile(t, conf, text)
	if out, err := exec.Command(namedCheckBinary, conf).CombinedOutput(); err != nil {
		t.Fatalf("named-checkconf (Debian package bind9): %v\n%s\n%s", err, out, text)
	}
	return func() *exec.Cmd {
		// -g: foreground, log to stderr; -4: IPv4 only; -n 1: one worker.
		args := []string{"-g", "-4", "-n", "1", "-c", conf}
		if o.Verbose {
			args = append(args, "-d", "3")
		}
		return exec.Command(namedBinary, args...)
	}
}
