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

const kresdBinary = "/usr/sbin/kresd"

// kresdConfig is kresd's Lua configuration: defaults except what a local
// test needs (ALLOW_LOCAL for every request, since kresd ignores loopback
// and private nameserver addresses otherwise; the local root hints; the
// built-in root trust anchor removed, since the local root is unsigned; a
// small cache in dir; logging to stderr) and the given trust anchors.
func kresdConfig(dir, hints string, port int, o Options) string {
	level := "notice"
	if o.Verbose {
		level = "debug"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `log_target('stderr')
log_level('%s')
net.ipv6 = false
net.listen('%s', %d, { kind = 'dns' })
net.outgoing_v4('%s')
modules.load('hints > iterate')
hints.root_file('%s')
cache.open(10 * MB, 'lmdb://%s')
cache.clear()
trust_anchors.remove('.')
policy.add(policy.all(policy.FLAGS({'ALLOW_LOCAL'})))
`, level, o.IP, port, o.IP, hints, filepath.Join(dir, "cache"))
	// One trust_anchors.add() per zone with all its DS records: kresd 5.6
	// logs "extending previously set trust anchors" on a second add() for
	// a zone but keeps only the second call's records.
	var owners []string
	byOwner := map[string][]string{}
	for _, ds := range o.TrustAnchors {
		if byOwner[ds.Hdr.Name] == nil {
			owners = append(owners, ds.Hdr.Name)
		}
		byOwner[ds.Hdr.Name] = append(byOwner[ds.Hdr.Name], fmt.Sprintf("%s DS %s", ds.Hdr.Name, dsText(ds)))
	}
	for _, owner := range owners {
		fmt.Fprintf(&b, "trust_anchors.add([[\n%s\n]])\n", strings.Join(byOwner[owner], "\n"))
	}
	return b.String()
}

func setupKnot(t testing.TB, dir string, h *Hierarchy, o Options) func() *exec.Cmd {
	t.Helper()
	conf := filepath.Join(dir, "kresd.conf")
	text := kresdConfig(dir, h.RootHints, o.Port, o)
	writeFile(t, conf, text)
	// kresd has no configuration checker: run the configuration once, with
	// quit() after it, so an error shows here rather than as a resolver
	// that never answers.
	check := filepath.Join(dir, "check.lua")
	writeFile(t, check, fmt.Sprintf("dofile('%s')\nquit()\n", conf))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kresdBinary, "-n", "-c", check, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kresd configuration check (Debian package knot-resolver): %v\n%s\n%s", err, out, text)
	}
	return func() *exec.Cmd { return exec.Command(kresdBinary, "-n", "-c", conf, dir) }
}
