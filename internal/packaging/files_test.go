package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// TestPackagedVersion checks that the packaged binary prints the package's
// version.
func TestPackagedVersion(t *testing.T) {
	p := packages(t)
	root := extractDeb(t, p.Deb)
	out, stderr, err := run(t, 10*time.Second, "", nil, filepath.Join(root, "usr/bin/spdu-haproxy"), "version")
	if err != nil {
		t.Fatalf("spdu-haproxy version: %v\n%s", err, stderr)
	}
	if want := "spdu-haproxy " + p.Version + "\n"; out != want {
		t.Errorf("spdu-haproxy version = %q, want %q", out, want)
	}
}

// placeholders are the values the operator fills into the packaged
// configuration, with the key `check` names while one is left.
var placeholders = map[string]struct{ value, key string }{
	"<site name>":           {"alpha", "site"},
	"<public IPv4 address>": {"192.0.2.10", "dns.listen"},
	"<pool zone>":           {"pool.example.org", "dns.zone"},
	"<nameserver 1>":        {"ns1.example.org", "dns.nameservers"},
	"<nameserver 2>":        {"ns2.example.org", "dns.nameservers"},
}

// TestPackagedConfig runs the packaged `spdu-haproxy check` on the packaged
// configuration: as shipped, and with any one placeholder left, it is
// refused with the key named (so a half-edited file never starts); with
// every placeholder filled, it is accepted. The file keeps the packaged
// mode (0640), so the safety check applies as installed.
func TestPackagedConfig(t *testing.T) {
	p := packages(t)
	root := extractDeb(t, p.Deb)
	bin := filepath.Join(root, "usr/bin/spdu-haproxy")
	shipped, err := os.ReadFile(filepath.Join(root, "etc/spdu-haproxy/spdu-haproxy.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// Every placeholder in a value is one this test knows how to fill.
	var found []string
	for _, m := range regexp.MustCompile(`"[^"\n]*?(<[^<>"\n]+>)`).FindAllStringSubmatch(string(shipped), -1) {
		if !slices.Contains(found, m[1]) {
			found = append(found, m[1])
		}
	}
	var known []string
	for k := range placeholders {
		known = append(known, k)
	}
	slices.Sort(found)
	slices.Sort(known)
	if diff := cmp.Diff(known, found); diff != "" {
		t.Fatalf("placeholders in the packaged configuration (-known +found):\n%s", diff)
	}

	fill := func(except string) string {
		text := string(shipped)
		for k, v := range placeholders {
			if k != except {
				text = strings.ReplaceAll(text, k, v.value)
			}
		}
		return text
	}
	check := func(t *testing.T, text string) (string, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "spdu-haproxy.toml")
		if err := os.WriteFile(path, []byte(text), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o640); err != nil { // whatever the umask
			t.Fatal(err)
		}
		_, stderr, err := run(t, 10*time.Second, "", nil, bin, "check", "-config", path)
		return stderr, err
	}

	t.Run("as shipped", func(t *testing.T) {
		if stderr, err := check(t, string(shipped)); err == nil {
			t.Errorf("check accepted the configuration with its placeholders")
		} else if !strings.Contains(stderr, "<site name>") {
			t.Errorf("check: %v\n%s\nwant the first placeholder (site) named", err, stderr)
		}
	})
	for k, v := range placeholders {
		t.Run("left "+k, func(t *testing.T) {
			stderr, err := check(t, fill(k))
			if err == nil {
				t.Fatalf("check accepted the configuration with %s left", k)
			}
			if !strings.Contains(stderr, v.key+": ") || !strings.Contains(stderr, k) {
				t.Errorf("check: %s\nwant key %s and %s named", stderr, v.key, k)
			}
		})
	}
	t.Run("filled", func(t *testing.T) {
		if stderr, err := check(t, fill("")); err != nil {
			t.Errorf("check refused the filled configuration: %v\n%s", err, stderr)
		}
	})
}

// TestManPage renders the packaged man page as lintian does (no warning
// from man or groff) and checks that it documents every command that
// `spdu-haproxy help` lists: a synopsis line, and a "## COMMAND" section in
// docs/spdu-haproxy.8.md.
func TestManPage(t *testing.T) {
	p := packages(t)
	testenv.RequireTool(t, "man", "man-db")
	root := extractDeb(t, p.Deb)
	page := filepath.Join(root, "usr/share/man/man8/spdu-haproxy.8.gz")
	env := append(os.Environ(), "LC_ALL=C.UTF-8", "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "MAN_KEEP_FORMATTING=")
	_, stderr, err := run(t, 30*time.Second, "", env, "man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page)
	if err != nil || strings.TrimSpace(stderr) != "" {
		t.Errorf("man --warnings -l: %v\n%s", err, stderr)
	}
	// Wide, so that no path or synopsis is broken across lines.
	text, stderr, err := run(t, 30*time.Second, "", append(env, "MANWIDTH=1000"), "man", "-l", page)
	if err != nil {
		t.Fatalf("man -l: %v\n%s", err, stderr)
	}
	if !strings.Contains(text, "spdu-haproxy - serve a DNS pool zone") {
		t.Errorf("man -l: no NAME line:\n%s", text)
	}
	if !strings.Contains(text, "/usr/share/doc/spdu-haproxy/README.md") {
		t.Errorf("man -l: does not point to the README for the configuration reference")
	}

	usage, _, _ := run(t, 10*time.Second, "", nil, filepath.Join(root, "usr/bin/spdu-haproxy"), "help")
	var commands []string
	for _, line := range strings.Split(usage, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "spdu-haproxy" {
			commands = append(commands, f[1])
		}
	}
	if len(commands) < 6 {
		t.Fatalf("spdu-haproxy help lists %v; want the commands", commands)
	}
	src, err := os.ReadFile(filepath.Join(repoRoot, "docs/spdu-haproxy.8.md"))
	if err != nil {
		t.Fatal(err)
	}
	plain := regexp.MustCompile(`\s+`).ReplaceAllString(text, " ")
	for _, c := range commands {
		if !regexp.MustCompile(`(?m)^## ` + regexp.QuoteMeta(c) + `$`).Match(src) {
			t.Errorf("docs/spdu-haproxy.8.md: no \"## %s\" section under COMMANDS for the command %s", c, c)
		}
		if !strings.Contains(plain, "spdu-haproxy "+c) {
			t.Errorf("man page: no synopsis line \"spdu-haproxy %s\"", c)
		}
	}
}
