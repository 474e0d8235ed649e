package config

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's generated sections")

// TestREADMERestartKeys keeps the README's table of restart-only keys
// equal to restartKeys; -update rewrites it.
func TestREADMERestartKeys(t *testing.T) {
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)(<!-- restart-keys:[^\n]*-->\n).*?(<!-- /restart-keys -->)`)
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no restart-keys markers", path)
	}
	want := string(m[1]) + RestartKeysMarkdown() + string(m[2])
	if string(m[0]) == want {
		return
	}
	if !*update {
		t.Fatalf("README's restart-keys table is out of date: run go test ./internal/config -run TestREADMERestartKeys -update")
	}
	if err := os.WriteFile(path, re.ReplaceAll(b, []byte(want)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRestartKeys: a change of a restart-only key is reported and kept;
// other keys go through.
func TestRestartKeys(t *testing.T) {
	cur := mustParse(t, minimal)
	next := mustParse(t, minimal)
	next.Site, next.DNS.Mode, next.DNS.TTL.Duration = "beta", ModeSelf, 9e9
	next.DNS.UDPSockets = 7
	if got, want := cur.RestartChanges(next), []string{"site", "dns.udp_sockets"}; !slices.Equal(got, want) {
		t.Errorf("RestartChanges = %v, want %v", got, want)
	}
	kept := cur.KeepRestartKeys(next)
	if kept.Site != cur.Site || kept.DNS.UDPSockets != cur.DNS.UDPSockets || kept.DNS.TTL != next.DNS.TTL {
		t.Errorf("KeepRestartKeys: site %q sockets %d ttl %s; want the running site and sockets, the new TTL", kept.Site, kept.DNS.UDPSockets, kept.DNS.TTL)
	}
	if next.Site != "beta" {
		t.Error("KeepRestartKeys changed its argument")
	}
}

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
