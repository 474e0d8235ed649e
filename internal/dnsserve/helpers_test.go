package dnsserve

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

const (
	testZone = "pool.example.test."
	testTTL  = 30
)

// testConfig is the zone most tests serve:
//
//	@      A 192.0.2.1
//	api    A 192.0.2.10, 192.0.2.11
//	v6     AAAA 2001:db8::6
//	both   A 192.0.2.2, AAAA 2001:db8::2
//	a.x    A 192.0.2.20         (x is an empty non-terminal)
//	ns2    A 192.0.2.53         (in-zone nameserver)
func testConfig() Config {
	return Config{
		Zone:        testZone,
		TTL:         testTTL * time.Second,
		Nameservers: []string{"ns1.example.test.", "ns2." + testZone},
		Hostmaster:  "hostmaster.example.test.",
		Withdraw:    dns.RcodeRefused,
		Listen:      []string{"127.0.0.1:0"},
		Records: map[string]Records{
			"@":    {A: addrs("192.0.2.1")},
			"api":  {A: addrs("192.0.2.10", "192.0.2.11")},
			"v6":   {AAAA: addrs("2001:db8::6")},
			"both": {A: addrs("192.0.2.2"), AAAA: addrs("2001:db8::2")},
			"a.x":  {A: addrs("192.0.2.20")},
			"ns2":  {A: addrs("192.0.2.53")},
		},
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// Expected-record builders; names are relative to testZone ("@" is the apex).

func fqdn(rel string) string {
	if rel == "@" {
		return testZone
	}
	return rel + "." + testZone
}

func rrA(rel, ip string) string {
	return fmt.Sprintf("%s\t%d\tIN\tA\t%s", fqdn(rel), testTTL, ip)
}

func rrAAAA(rel, ip string) string {
	return fmt.Sprintf("%s\t%d\tIN\tAAAA\t%s", fqdn(rel), testTTL, ip)
}

func rrNS(ns string) string {
	return fmt.Sprintf("%s\t%d\tIN\tNS\t%s", testZone, testTTL, ns)
}

// rrSOA is the apex SOA with serial; serial 0 stands for "any serial", see
// summarize.
func rrSOA(serial uint32) string {
	return fmt.Sprintf("%s\t%d\tIN\tSOA\tns1.example.test. hostmaster.example.test. %d %d %d %d %d",
		testZone, testTTL, serial, soaRefresh, soaRetry, soaExpire, testTTL)
}

// summary is the part of a reply the tests compare with cmp.Diff.
type summary struct {
	Rcode     string
	Opcode    string
	AA, TC    bool
	Question  []string
	Answer    []string // sorted RR strings
	Authority []string // sorted RR strings
	Extra     []string // sorted RR strings, OPT excluded
	OPT       string   // "" without an OPT record
}

// summarize turns m into a summary. SOA serials are replaced by 0 so that
// tests not about serials need not know them.
func summarize(m *dns.Msg) summary {
	s := summary{
		Rcode:     rcodeName(m.Rcode),
		Opcode:    dns.OpcodeToString[m.Opcode],
		AA:        m.Authoritative,
		TC:        m.Truncated,
		Answer:    rrStrings(m.Answer),
		Authority: rrStrings(m.Ns),
	}
	for _, q := range m.Question {
		s.Question = append(s.Question, q.String())
	}
	for _, rr := range m.Extra {
		if opt, ok := rr.(*dns.OPT); ok {
			s.OPT = fmt.Sprintf("version=%d udp=%d do=%t", opt.Version(), opt.UDPSize(), opt.Do())
			continue
		}
		s.Extra = append(s.Extra, rr.String())
	}
	return s
}

// rrStrings returns the sorted presentation forms of rrs with every domain
// name lower-cased: names compress against the question, so they take its
// case, as Knot's do, and names compare case-insensitively (RFC 4343).
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		rr.Header().Name = strings.ToLower(rr.Header().Name)
		switch rr := rr.(type) {
		case *dns.SOA:
			rr.Serial = 0
			rr.Ns, rr.Mbox = strings.ToLower(rr.Ns), strings.ToLower(rr.Mbox)
		case *dns.NS:
			rr.Ns = strings.ToLower(rr.Ns)
		}
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

func question(name string, qtype, qclass uint16) []string {
	q := dns.Question{Name: name, Qtype: qtype, Qclass: qclass}
	return []string{q.String()}
}

// setServing publishes the site's own records (true) or a refusal (false),
// as the daemon's publisher does in self mode.
func (s *Server) setServing(serving bool) {
	if err := s.SetAnswers(Answers{Refuse: !serving}); err != nil {
		panic(err) // own records always pass
	}
}

// reload is what a configuration reload does to s: Prepare cfg, then
// Apply it.
func reload(s *Server, cfg Config) error {
	p, err := s.Prepare(cfg)
	if err != nil {
		return err
	}
	s.Apply(p)
	return nil
}

// reloadListen reloads s with testConfig listening on addrs.
func reloadListen(s *Server, addrs []string) error {
	cfg := testConfig()
	cfg.Listen = addrs
	return reload(s, cfg)
}

// startServer starts a Server for cfg on cfg.Listen (127.0.0.1:0 in
// testConfig) and returns it with its
// UDP and TCP addresses. Cleanup cancels Run and fails the test if Run does
// not return nil within 3s.
// Each prepare function is applied before Run, for fields such as the
// clock that the query path reads.
func startServer(t testing.TB, cfg Config, serving bool, prepare ...func(*Server)) (s *Server, udp, tcp string) {
	t.Helper()
	// Debug logs go to t.Log: shown for failing tests, and they exercise the
	// logging path of every query.
	logger := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	s, err := New(logger, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.setServing(serving)
	for _, f := range prepare {
		f(s)
	}
	if err := s.Bind(); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	u, tc := s.Addrs()
	if len(u) != 1 || len(tc) != 1 {
		t.Fatalf("Addrs() = %v, %v; want one of each", u, tc)
	}
	runServer(t, s)
	return s, u[0].String(), tc[0].String()
}

// runServer runs s until the test ends; cleanup fails the test if Run does
// not return nil within 3s of the cancel.
func runServer(t testing.TB, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Errorf("Run did not return within 3s of cancel")
		}
	})
}

// quietLog is a startServer prepare function that keeps the log at info
// level: startServer's debug logging of every query allocates, which the
// allocation tests must not count.
func quietLog(s *Server) { s.log = s.log.Level(zerolog.InfoLevel) }

// exchange sends m over network ("udp" or "tcp") to addr and returns the reply.
func exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange %s %s: %v", network, addr, err)
	}
	return r
}

// query builds an IN query without RD.
func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return m
}

// rawExchange sends b on a fresh UDP socket to addr and returns the reply,
// or nil if none arrives within wait.
func rawExchange(t testing.TB, addr string, b []byte, wait time.Duration) *dns.Msg {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatalf("unpack reply: %v", err)
	}
	return r
}

func mustPack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	return b
}
