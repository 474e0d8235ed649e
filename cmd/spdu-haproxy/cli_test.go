package main

import (
	"os"
	"strings"
	"testing"
)

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.toml"
	bad := dir + "/bad.toml"
	if err := os.WriteFile(good, []byte("site = \"alpha\"\n[haproxy]\nbackend = \"api\"\n[dns]\nzone = \"pool.domain.tld\"\nnameservers = [\"ns.domain.tld.\"]\n[dns.records.api]\na = [\"1.2.3.4\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("site = \"alpha\"\n[health]\nrise = 0\nfall = -3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // substring expected on stdout
		stderr string // substring expected on stderr
	}{
		{[]string{"check", "-config", good}, 0, `poll_interval = "500ms"`, ""},
		{[]string{"check", "-config", bad}, 1, "", "config " + bad + ": haproxy.backend: required"},
		{[]string{"check", "-config", dir + "/missing.toml"}, 1, "", "missing.toml does not exist"},
		{[]string{"version"}, 0, "spdu-haproxy ", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{}, 2, "", "usage:"},
		{[]string{"run", "-log-format", "xml", "-config", good}, 2, "", `-log-format: "xml" is not json or console`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			code := realMain(tc.args, &out, &errOut)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q does not contain %q", out.String(), tc.stdout)
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("stderr %q does not contain %q", errOut.String(), tc.stderr)
			}
		})
	}
}
