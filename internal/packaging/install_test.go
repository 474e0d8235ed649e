package packaging

import (
	"strings"
	"testing"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// fillConfig replaces the packaged configuration's placeholders in place
// (sed -i keeps its owner and mode).
func fillConfig() string {
	var b strings.Builder
	b.WriteString("sed -i")
	for k, v := range placeholders {
		b.WriteString(" -e 's/" + k + "/" + v.value + "/g'")
	}
	b.WriteString(" /etc/spdu-haproxy/spdu-haproxy.toml")
	return b.String()
}

const (
	wants = "/etc/systemd/system/multi-user.target.wants/spdu-haproxy.service"
	// drainState is what a drained daemon leaves in its state directory.
	drainState = `install -o spdu-haproxy -g spdu-haproxy -m 0600 /dev/null /var/lib/spdu-haproxy/state.json`
)

// checkInstalled checks what every install must leave: the user in its
// groups, the files with their owners and modes, and a configuration that
// the service user may read and that passes `check` once filled in.
func checkInstalled(t *testing.T, r *scratchRoot, nologin string) {
	t.Helper()
	if got := r.must(t, "groups of spdu-haproxy", "id -nG spdu-haproxy"); strings.Join(strings.Fields(got), " ") != "spdu-haproxy haproxy" {
		t.Errorf("id -nG spdu-haproxy = %q, want its own group and haproxy", got)
	}
	if got := r.must(t, "passwd entry", "getent passwd spdu-haproxy | cut -d: -f6,7"); strings.TrimSpace(got) != "/var/lib/spdu-haproxy:"+nologin {
		t.Errorf("home and shell of spdu-haproxy = %q, want /var/lib/spdu-haproxy:%s", got, nologin)
	}
	got := r.must(t, "stat installed files", "stat -c '%U:%G %a %n' /usr/bin/spdu-haproxy /etc/spdu-haproxy "+
		"/etc/spdu-haproxy/spdu-haproxy.toml /var/lib/spdu-haproxy /usr/lib/systemd/system/spdu-haproxy.service")
	want := `root:root 755 /usr/bin/spdu-haproxy
root:root 755 /etc/spdu-haproxy
root:spdu-haproxy 640 /etc/spdu-haproxy/spdu-haproxy.toml
spdu-haproxy:spdu-haproxy 700 /var/lib/spdu-haproxy
root:root 644 /usr/lib/systemd/system/spdu-haproxy.service
`
	if got != want {
		t.Errorf("installed files:\n%s\nwant:\n%s", got, want)
	}
	r.must(t, "enabled on first install", "test -L "+wants)
	if out, err := r.sh(t, "spdu-haproxy check"); err == nil || !strings.Contains(out, "site:") {
		t.Errorf("check of the unedited configuration: %v\n%s\nwant it refused, naming site", err, out)
	}
	r.must(t, "fill in the configuration", fillConfig())
	r.must(t, "check as root", "spdu-haproxy check >/dev/null")
	r.must(t, "check as the service user", "runuser -u spdu-haproxy -- spdu-haproxy check -config /etc/spdu-haproxy/spdu-haproxy.toml >/dev/null")
}

// TestDebInstall installs the .deb in a scratch copy of this machine and
// follows an operator: first install (user and groups created, service
// enabled, not started: there is no systemd to start it here, and the
// scripts never ask for a start), the packaged unit verified, the
// configuration filled in and checked as the service user would read it;
// an upgrade keeps the edits and an operator's `systemctl disable`; remove
// keeps configuration and drain state; purge deletes both and the
// enablement, and keeps the user.
func TestDebInstall(t *testing.T) {
	p := packages(t)
	testenv.RequireTool(t, "systemd-analyze", "systemd")
	r := newScratchRoot(t)
	deb := r.copyIn(t, p.Deb)
	r.must(t, "user absent before install", "! getent passwd spdu-haproxy")

	out := r.must(t, "dpkg -i", "dpkg -i "+deb+" </dev/null")
	t.Logf("dpkg -i:\n%s", out)
	checkInstalled(t, r, "/usr/sbin/nologin")
	if out, err := r.sh(t, "systemd-analyze verify --man=yes /usr/lib/systemd/system/spdu-haproxy.service"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify of the installed unit: %v\n%s", err, out)
	}

	r.must(t, "upgrade", "dpkg -i "+deb+" </dev/null")
	r.must(t, "upgrade keeps the operator's configuration", "grep -q '^site = \"alpha\"' /etc/spdu-haproxy/spdu-haproxy.toml")
	r.must(t, "still enabled after upgrade", "test -L "+wants)
	r.must(t, "operator disables the service", "systemctl disable spdu-haproxy.service")
	r.must(t, "upgrade", "dpkg -i "+deb+" </dev/null")
	r.must(t, "upgrade keeps an operator's disable", "test ! -e "+wants)
	r.must(t, "operator enables the service again", "systemctl enable spdu-haproxy.service")

	r.must(t, "a drain is remembered", drainState)
	r.must(t, "dpkg -r", "dpkg -r spdu-haproxy </dev/null")
	r.must(t, "remove deletes the binary", "test ! -e /usr/bin/spdu-haproxy")
	r.must(t, "remove keeps the configuration", "grep -q '^site = \"alpha\"' /etc/spdu-haproxy/spdu-haproxy.toml")
	r.must(t, "remove keeps the drain state", "test -f /var/lib/spdu-haproxy/state.json")

	r.must(t, "dpkg -P", "dpkg -P spdu-haproxy </dev/null")
	r.must(t, "purge deletes configuration and state", "test ! -e /etc/spdu-haproxy && test ! -e /var/lib/spdu-haproxy")
	r.must(t, "purge deletes the enablement", "test ! -e "+wants)
	r.must(t, "purge keeps the user", "getent passwd spdu-haproxy >/dev/null")
}

// TestRPMInstall does the same with the .rpm, installed by rpm (without
// dependency checks: this Debian machine's rpm database knows no packages)
// so that its scriptlets really run: install, upgrade keeping the edits,
// erase keeping an edited configuration as .rpmsave and the drain state.
func TestRPMInstall(t *testing.T) {
	p := packages(t)
	testenv.RequireTool(t, "rpm", "rpm")
	r := newScratchRoot(t)
	rpm := r.copyIn(t, p.RPM)
	r.must(t, "user absent before install", "! getent passwd spdu-haproxy")

	out := r.must(t, "rpm -i", "rpm -i --nodeps "+rpm)
	t.Logf("rpm -i:\n%s", out)
	checkInstalled(t, r, "/sbin/nologin")

	r.must(t, "upgrade", "rpm -U --nodeps --replacepkgs "+rpm)
	r.must(t, "upgrade keeps the operator's configuration", "grep -q '^site = \"alpha\"' /etc/spdu-haproxy/spdu-haproxy.toml")
	r.must(t, "still enabled after upgrade", "test -L "+wants)

	r.must(t, "a drain is remembered", drainState)
	r.must(t, "rpm -e", "rpm -e --nodeps spdu-haproxy")
	r.must(t, "erase deletes the binary", "test ! -e /usr/bin/spdu-haproxy")
	r.must(t, "erase keeps the edited configuration", "grep -q '^site = \"alpha\"' /etc/spdu-haproxy/spdu-haproxy.toml.rpmsave")
	r.must(t, "erase keeps the drain state", "test -f /var/lib/spdu-haproxy/state.json")
	r.must(t, "erase disables the service", "test ! -e "+wants)
}
