package packaging

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// entry is one file of a package as its archive lists it.
type entry struct {
	Mode  string // as ls -l prints it: "-rw-r-----"
	Owner string // "user/group"
	Flags string // rpm file flags ("cn": config, noreplace); "" for a .deb
}

// packagedFiles are the files whose place, owner and mode matter, in both
// packages. Anything else a package holds must be a root-owned directory
// (0755) or a file under /usr/share/doc/spdu-haproxy (0644).
var packagedFiles = map[string]entry{
	"/usr/bin/spdu-haproxy":                                                       {"-rwxr-xr-x", "root/root", ""},
	"/usr/lib/systemd/system/spdu-haproxy.service":                                {"-rw-r--r--", "root/root", ""},
	"/etc/spdu-haproxy":                                                           {"drwxr-xr-x", "root/root", ""},
	"/etc/spdu-haproxy/spdu-haproxy.toml":                                         {"-rw-r-----", "root/spdu-haproxy", "cn"},
	"/var/lib/spdu-haproxy":                                                       {"drwx------", "spdu-haproxy/spdu-haproxy", ""},
	"/usr/share/man/man8/spdu-haproxy.8.gz":                                       {"-rw-r--r--", "root/root", ""},
	"/usr/share/doc/spdu-haproxy/README.md":                                       {"-rw-r--r--", "root/root", ""},
	"/usr/share/doc/spdu-haproxy/copyright":                                       {"-rw-r--r--", "root/root", ""},
	"/usr/share/doc/spdu-haproxy/examples/alpha.toml":                             {"-rw-r--r--", "root/root", ""},
	"/usr/share/doc/spdu-haproxy/examples/haproxy.cfg":                            {"-rw-r--r--", "root/root", ""},
	"/usr/share/doc/spdu-haproxy/examples/grafana/spdu-haproxy.json":              {"-rw-r--r--", "root/root", ""},
	"/usr/share/doc/spdu-haproxy/examples/prometheus/spdu-haproxy-rules.yml":      {"-rw-r--r--", "root/root", ""},
	"/usr/share/doc/spdu-haproxy/examples/prometheus/spdu-haproxy-rules.test.yml": {"-rw-r--r--", "root/root", ""},
}

// debOnlyFiles are in the .deb only.
var debOnlyFiles = map[string]entry{
	"/usr/share/doc/spdu-haproxy/changelog.Debian.gz": {"-rw-r--r--", "root/root", ""},
	"/usr/share/lintian/overrides/spdu-haproxy":       {"-rw-r--r--", "root/root", ""},
}

// checkContents compares the listed files with want and checks that every
// other entry is a plain directory or documentation.
func checkContents(t *testing.T, got, want map[string]entry) {
	t.Helper()
	for path, w := range want {
		g, ok := got[path]
		if !ok {
			t.Errorf("%s: missing from the package", path)
			continue
		}
		if diff := cmp.Diff(w, g); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}
	for path, g := range got {
		if _, ok := want[path]; ok {
			continue
		}
		switch {
		case g.Mode == "drwxr-xr-x" && g.Owner == "root/root":
		case strings.HasPrefix(path, "/usr/share/doc/spdu-haproxy/") && g.Mode == "-rw-r--r--" && g.Owner == "root/root":
		default:
			t.Errorf("%s: unexpected %s %s in the package", path, g.Mode, g.Owner)
		}
	}
}

// TestDebContents checks the .deb's files, owners and modes (dpkg-deb -c),
// its conffile and its relations: it pre-depends on adduser (preinst creates
// the user) and only recommends HAProxy.
func TestDebContents(t *testing.T) {
	p := packages(t)
	out, err := exec.Command("dpkg-deb", "-c", p.Deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v", err)
	}
	t.Logf("dpkg-deb -c %s:\n%s", p.Deb, out)
	got := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// drwxr-xr-x root/root 0 2026-12-02 00:19 ./etc/spdu-haproxy/
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Fatalf("dpkg-deb -c line %q: want 6 fields", line)
		}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		got[path] = entry{Mode: f[0], Owner: f[1]}
	}
	want := map[string]entry{}
	for path, e := range packagedFiles {
		e.Flags = ""
		want[path] = e
	}
	for path, e := range debOnlyFiles {
		want[path] = e
	}
	checkContents(t, got, want)

	conffiles, err := exec.Command("sh", "-c", `dpkg-deb --ctrl-tarfile "$1" | tar -xOf - ./conffiles`, "sh", p.Deb).Output()
	if err != nil {
		t.Fatalf("read conffiles: %v", err)
	}
	if diff := cmp.Diff("/etc/spdu-haproxy/spdu-haproxy.toml\n", string(conffiles)); diff != "" {
		t.Errorf("conffiles (-want +got):\n%s", diff)
	}
	for field, want := range map[string]string{
		"Package": "spdu-haproxy", "Pre-Depends": "adduser", "Depends": "", "Recommends": "haproxy",
		"Section": "net", "Priority": "optional",
	} {
		got, err := exec.Command("dpkg-deb", "-f", p.Deb, field).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", field, err)
		}
		if g := strings.TrimSpace(string(got)); g != want {
			t.Errorf("control field %s = %q, want %q", field, g, want)
		}
	}
}

// TestRPMContents checks the .rpm's files, owners, modes and flags, and its
// relations: only the user tools its %pre runs, HAProxy recommended.
func TestRPMContents(t *testing.T) {
	p := packages(t)
	testenv.RequireTool(t, "rpm", "rpm")
	stdout, stderr, err := run(t, time.Minute, "", nil, "rpm", "-qp",
		"--qf", `[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]`, p.RPM)
	if err != nil {
		t.Fatalf("rpm -qp: %v\n%s", err, stderr)
	}
	got := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		// -rw-r----- root/spdu-haproxy cn /etc/spdu-haproxy/spdu-haproxy.toml
		// -rwxr-xr-x root/root  /usr/bin/spdu-haproxy  (no flags)
		mode, rest, _ := strings.Cut(line, " ")
		owner, rest, _ := strings.Cut(rest, " ")
		flags, path, _ := strings.Cut(rest, " ")
		got[path] = entry{Mode: mode, Owner: owner, Flags: flags}
	}
	checkContents(t, got, packagedFiles)

	for _, q := range []struct{ query, want string }{
		{"--requires", "/usr/sbin/useradd\n/usr/sbin/groupadd"},
		{"--recommends", "haproxy"},
	} {
		out, _, err := run(t, time.Minute, "", nil, "rpm", "-qp", q.query, p.RPM)
		if err != nil {
			t.Fatalf("rpm -qp %s: %v", q.query, err)
		}
		if diff := cmp.Diff(q.want, strings.TrimSpace(out)); diff != "" {
			t.Errorf("rpm %s (-want +got):\n%s", q.query, diff)
		}
	}
}

// TestDebLintian runs lintian on the .deb: no error and no warning; the
// overrides in packaging/deb/lintian-overrides say why each is there.
func TestDebLintian(t *testing.T) {
	p := packages(t)
	lintian := testenv.RequireTool(t, "lintian", "lintian")
	start := time.Now()
	// Overridden tags are not shown (--show-overrides would make them fail).
	stdout, stderr, err := run(t, 5*time.Minute, "", nil, lintian, "--fail-on", "error,warning", "--display-info", p.Deb)
	t.Logf("lintian --fail-on error,warning --display-info (%s):\n%s", time.Since(start).Round(time.Millisecond), stdout)
	if err != nil {
		t.Errorf("lintian: %v\n%s%s", err, stdout, stderr)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			t.Errorf("lintian: %s", line)
		}
	}
}
