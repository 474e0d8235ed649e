package dnsserve

import (
	"math"
	"testing"

	"github.com/miekg/dns"
)

// TestShedFraction checks load shedding over real UDP: with Shed 0.5 about
// half of the address queries for service names get the withdraw rcode,
// the rest the records; the apex's SOA and NS and an in-zone nameserver's
// address are never shed; ShedTotal counts exactly the shed replies; and
// changing the fraction does not move the SOA serial.
func TestShedFraction(t *testing.T) {
	s, udp, _ := startServer(t, testConfig(), true)
	serial := s.snap.Load().serial
	if err := s.SetAnswers(Answers{Shed: 0.5}); err != nil {
		t.Fatal(err)
	}
	if got := s.snap.Load().serial; got != serial {
		t.Errorf("SOA serial moved from %d to %d when only the shed fraction changed", serial, got)
	}
	const n = 400
	refused := 0
	for i := range n {
		qtype := []uint16{dns.TypeA, dns.TypeANY}[i%2]
		r := exchange(t, "udp", udp, query(fqdn("api"), qtype))
		switch {
		case r.Rcode == dns.RcodeRefused && len(r.Answer) == 0 && !r.Authoritative:
			refused++
		case r.Rcode == dns.RcodeSuccess && len(r.Answer) == 2:
		default:
			t.Fatalf("query %d: %s with %d answers; want REFUSED or the two A records", i, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
	// Binomial(400, 0.5): sd 10, so 150..250 is five sd either way.
	if refused < 150 || refused > 250 {
		t.Errorf("%d of %d queries shed; want about half", refused, n)
	}
	if got := s.ShedTotal(); got != uint64(refused) {
		t.Errorf("ShedTotal %d; want the %d REFUSED replies", got, refused)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{testZone, dns.TypeSOA}, {testZone, dns.TypeNS}, {fqdn("ns2"), dns.TypeA}, {fqdn("api"), dns.TypeTXT}} {
		for range 50 {
			if r := exchange(t, "udp", udp, query(q.name, q.qtype)); r.Rcode != dns.RcodeSuccess {
				t.Fatalf("%s %s: %s while shedding; want NOERROR, never shed", q.name, dns.TypeToString[q.qtype], dns.RcodeToString[r.Rcode])
			}
		}
	}
}

// TestShedBounds checks the ends of the range, on both paths: Shed 1 sheds
// every address query for a service name (a TCP query takes the same
// path), Shed 0 none; and values outside 0..1 are rejected.
func TestShedBounds(t *testing.T) {
	s, udp, tcp := startServer(t, testConfig(), true)
	if err := s.SetAnswers(Answers{Shed: 1}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		net, addr, name string
		qtype           uint16
	}{{"udp", udp, fqdn("api"), dns.TypeA}, {"udp", udp, fqdn("v6"), dns.TypeAAAA}, {"tcp", tcp, fqdn("both"), dns.TypeA}, {"udp", udp, testZone, dns.TypeA}} {
		m := query(q.name, q.qtype)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1}}) // slow path
		for _, m := range []*dns.Msg{query(q.name, q.qtype), m} {
			if r := exchange(t, q.net, q.addr, m); r.Rcode != dns.RcodeRefused {
				t.Errorf("Shed 1, %s %s %s: %s; want REFUSED", q.net, q.name, dns.TypeToString[q.qtype], dns.RcodeToString[r.Rcode])
			}
		}
	}
	if err := s.SetAnswers(Answers{}); err != nil {
		t.Fatal(err)
	}
	before := s.ShedTotal()
	for range 100 {
		if r := exchange(t, "udp", udp, query(fqdn("api"), dns.TypeA)); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("Shed 0: %s; want NOERROR", dns.RcodeToString[r.Rcode])
		}
	}
	if s.ShedTotal() != before {
		t.Errorf("Shed 0 shed %d queries", s.ShedTotal()-before)
	}
	for _, bad := range []float64{-0.1, 1.5, math.NaN()} {
		if err := s.SetAnswers(Answers{Shed: bad}); err == nil {
			t.Errorf("SetAnswers(Shed %v) succeeded; want an error", bad)
		}
	}
	if shedThreshold(1) != math.MaxUint64 || shedThreshold(0) != 0 || shedThreshold(0.5) != 1<<63 {
		t.Errorf("shedThreshold(1, 0, 0.5) = %d, %d, %d", shedThreshold(1), shedThreshold(0), shedThreshold(0.5))
	}
}
