package dnsserve

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
)

func TestNewRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"identity too long", func(c *Config) { c.Identity = strings.Repeat("a", 256) }, `config Identity: 256 bytes; at most 255`},
		{"identity with a quote", func(c *Config) { c.Identity = `a"b` }, `config Identity "a\"b": only printable ASCII without quotes or backslashes`},
		{"identity with a newline", func(c *Config) { c.Identity = "a\nb" }, `config Identity "a\nb": only printable ASCII without quotes or backslashes`},
		{"invalid whitelist prefix", func(c *Config) { c.RRL.Whitelist = []netip.Prefix{{}} }, `config RRL.Whitelist[0]: invalid prefix`},
		{"missing cookie secret file", func(c *Config) { c.CookieSecretFile = "/nonexistent/secret" }, `config CookieSecretFile: open /nonexistent/secret: no such file or directory`},
		{"negative TCP cap", func(c *Config) { c.TCPMaxConns = -1 }, `config UDPSockets, UDPReadBuffer, TCPMaxConns, TCPIdleTimeout and TCPQueryTimeout may not be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.modify(&cfg)
			_, err := New(zerolog.Nop(), cfg)
			if err == nil {
				t.Fatalf("New() = nil error; want %q", tt.want)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("New() error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptionDefaults(t *testing.T) {
	cfg := testConfig()
	cfg.RRL.Whitelist = []netip.Prefix{netip.MustParsePrefix("192.0.2.77/24")}
	o, err := resolveOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.identity == "" || o.rrl.Rate != 200 || o.rrl.Slip != 2 || o.udpSockets < 1 || o.udpReadBuffer != 4<<20 ||
		o.tcpMaxConns != 1000 || o.tcpIdleTimeout != 10*time.Second || o.tcpQueryTimeout != 2*time.Second {
		t.Errorf("defaults not applied: %+v", o)
	}
	if got := o.rrl.Whitelist[0].String(); got != "192.0.2.0/24" {
		t.Errorf("whitelist prefix %s; want it masked to 192.0.2.0/24", got)
	}
	if cfg.RRL.Whitelist[0].String() != "192.0.2.77/24" {
		t.Error("resolveOptions modified the caller's whitelist")
	}
}
