package config

import (
	"fmt"
	"reflect"
	"strings"
)

// restartKey is one key that a reload cannot change in place: the daemon
// keeps its running value until the next restart.
type restartKey struct {
	key    string
	reason string
	// get returns the key's value in c; keep copies it from src to dst.
	get  func(c *Config) any
	keep func(dst, src *Config)
}

// restartKeys is the one list of keys that need a restart. The reload
// (internal/daemon) keeps their running values and logs their names; the
// README's "Reloading" table is generated from it (RestartKeysMarkdown) and
// a test keeps the two equal.
var restartKeys = []restartKey{
	{"site", "the site's name is in every log line, metric, status document and NSID",
		func(c *Config) any { return c.Site }, func(d, s *Config) { d.Site = s.Site }},
	{"dns.zone", "the apex is every precomputed answer's suffix and, with DNSSEC, the signer",
		func(c *Config) any { return c.DNS.Zone }, func(d, s *Config) { d.DNS.Zone = s.DNS.Zone }},
	{"dns.udp_sockets", "SO_REUSEPORT groups cannot shrink or grow without dropping queued queries",
		func(c *Config) any { return c.DNS.UDPSockets }, func(d, s *Config) { d.DNS.UDPSockets = s.DNS.UDPSockets }},
	{"dns.mode", "self and pool mode start different components (the peer prober)",
		func(c *Config) any { return c.DNS.Mode }, func(d, s *Config) { d.DNS.Mode = s.DNS.Mode }},
	{"control.state_file", "the drain in force was loaded from it at start",
		func(c *Config) any { return c.Control.StateFile }, func(d, s *Config) { d.Control.StateFile = s.Control.StateFile }},
}

// RestartChanges returns the restart-only keys whose value differs between
// the running configuration c and next (nil when none does).
func (c *Config) RestartChanges(next *Config) []string {
	var keys []string
	for _, k := range restartKeys {
		if !reflect.DeepEqual(k.get(c), k.get(next)) {
			keys = append(keys, k.key)
		}
	}
	return keys
}

// KeepRestartKeys returns a copy of next whose restart-only keys hold the
// values of c, the running configuration.
func (c *Config) KeepRestartKeys(next *Config) *Config {
	n := *next
	for _, k := range restartKeys {
		k.keep(&n, c)
	}
	return &n
}

// RestartKeysMarkdown returns the README's table of restart-only keys.
func RestartKeysMarkdown() string {
	var b strings.Builder
	b.WriteString("| key | why it needs a restart |\n| --- | --- |\n")
	for _, k := range restartKeys {
		fmt.Fprintf(&b, "| `%s` | %s |\n", k.key, k.reason)
	}
	return b.String()
}
