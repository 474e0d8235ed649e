package dnsserve

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// TestQueryStats counts real queries over UDP and TCP by type and rcode.
func TestQueryStats(t *testing.T) {
	s, udp, tcp := startServer(t, testConfig(), true)
	for range 3 {
		exchange(t, "udp", udp, query("api."+testZone, dns.TypeA))
	}
	exchange(t, "tcp", tcp, query("v6."+testZone, dns.TypeAAAA))
	exchange(t, "udp", udp, query("nothere."+testZone, dns.TypeA))
	exchange(t, "udp", udp, query("example.com.", dns.TypeTXT))
	exchange(t, "udp", udp, query(testZone, dns.TypeSOA))
	want := map[QueryKey]uint64{
		{"udp", "A", "NOERROR"}:     3,
		{"tcp", "AAAA", "NOERROR"}:  1,
		{"udp", "A", "NXDOMAIN"}:    1,
		{"udp", "other", "REFUSED"}: 1,
		{"udp", "SOA", "NOERROR"}:   1,
	}
	if diff := cmp.Diff(want, s.QueryStats()); diff != "" {
		t.Errorf("QueryStats (-want +got):\n%s", diff)
	}
}
