package dnsserve

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestReloadZone: a reload swaps the zone's data over real sockets, keeps the
// serving state, moves the serial on, and refuses a bad config or another
// apex while keeping the running zone.
func TestReloadZone(t *testing.T) {
	s, udp, _ := startServer(t, testConfig(), true)
	before := exchange(t, "udp", udp, query("api."+testConfig().Zone, dns.TypeA))
	if before.Rcode != dns.RcodeSuccess || len(before.Answer) == 0 {
		t.Fatalf("before: %v", before)
	}
	serial := s.Serial()
	cfg := testConfig()
	cfg.TTL = 7 * time.Second
	if err := reload(s, cfg); err != nil {
		t.Fatal(err)
	}
	after := exchange(t, "udp", udp, query("api."+cfg.Zone, dns.TypeA))
	if after.Rcode != dns.RcodeSuccess || len(after.Answer) == 0 || after.Answer[0].Header().Ttl != 7 {
		t.Errorf("after reload: %v, want TTL 7", after)
	}
	if !s.Serving() || int32(s.Serial()-serial) <= 0 {
		t.Errorf("serving %v serial %d -> %d: want still serving and a larger serial", s.Serving(), serial, s.Serial())
	}
	bad := testConfig()
	bad.Nameservers = nil
	if err := reload(s, bad); err == nil {
		t.Error("reload accepted a config without nameservers")
	}
	other := testConfig()
	other.Zone = "other.tld."
	if err := reload(s, other); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Errorf("reload to another apex: %v, want a restart error", err)
	}
	if r := exchange(t, "udp", udp, query("api."+cfg.Zone, dns.TypeA)); r.Answer[0].Header().Ttl != 7 {
		t.Errorf("a refused reload changed the zone: %v", r)
	}
}
