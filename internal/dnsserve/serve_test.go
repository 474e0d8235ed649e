package dnsserve

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// transports are the ways every answer test is sent: UDP and TCP, each
// without EDNS, with EDNS and with EDNS and the DO bit.
var transports = []struct {
	name    string
	network string
	edns    bool
	do      bool
}{
	{"udp", "udp", false, false},
	{"udp+edns", "udp", true, false},
	{"udp+edns+do", "udp", true, true},
	{"tcp", "tcp", false, false},
	{"tcp+edns", "tcp", true, false},
	{"tcp+edns+do", "tcp", true, true},
}

// wantOPT is the OPT summary every EDNS reply must carry.
func wantOPT(edns, do bool) string {
	if !edns {
		return ""
	}
	return fmt.Sprintf("version=0 udp=%d do=%t", ednsUDPSize, do)
}

// answerCase is one question and the expected reply; Question, Opcode and
// OPT are filled in by runAnswerCases.
type answerCase struct {
	name  string
	qname string
	qtype uint16
	want  summary
}

// runAnswerCases sends every case over every transport and compares.
func runAnswerCases(t *testing.T, udp, tcp string, cases []answerCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, tr := range transports {
				t.Run(tr.name, func(t *testing.T) {
					addr := udp
					if tr.network == "tcp" {
						addr = tcp
					}
					m := query(tc.qname, tc.qtype)
					if tr.edns {
						m.SetEdns0(4096, tr.do)
					}
					got := summarize(exchange(t, tr.network, addr, m))

					want := tc.want
					want.Opcode = "QUERY"
					want.Question = question(tc.qname, tc.qtype, dns.ClassINET)
					want.OPT = wantOPT(tr.edns, tr.do)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("reply mismatch (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

func noerror(answer ...string) summary {
	return summary{Rcode: "NOERROR", AA: true, Answer: answer}
}

// nodata is NOERROR with no answer and the SOA in authority (RFC 2308 section 2.2).
func nodata() summary {
	return summary{Rcode: "NOERROR", AA: true, Authority: []string{rrSOA(0)}}
}

// nxdomain is NXDOMAIN with the SOA in authority (RFC 2308 section 2.1).
func nxdomain() summary {
	return summary{Rcode: "NXDOMAIN", AA: true, Authority: []string{rrSOA(0)}}
}

func refused() summary { return summary{Rcode: "REFUSED"} }

func withExtra(s summary, extra ...string) summary {
	s.Extra = extra
	return s
}

func TestServeAnswers(t *testing.T) {
	_, udp, tcp := startServer(t, testConfig(), true)

	runAnswerCases(t, udp, tcp, []answerCase{
		{"apex SOA", testZone, dns.TypeSOA, noerror(rrSOA(0))},
		{"apex NS with in-zone glue", testZone, dns.TypeNS, withExtra(noerror(rrNS("ns1.example.test."), rrNS("ns2.pool.example.test.")), rrA("ns2", "192.0.2.53"))},
		{"apex A", testZone, dns.TypeA, noerror(rrA("@", "192.0.2.1"))},
		{"apex ANY is one RRset, the lowest type (RFC 8482, as Knot)", testZone, dns.TypeANY, noerror(rrA("@", "192.0.2.1"))},
		{"A RRset", fqdn("api"), dns.TypeA, noerror(rrA("api", "192.0.2.10"), rrA("api", "192.0.2.11"))},
		{"AAAA", fqdn("v6"), dns.TypeAAAA, noerror(rrAAAA("v6", "2001:db8::6"))},
		{"A of a dual-stack name", fqdn("both"), dns.TypeA, noerror(rrA("both", "192.0.2.2"))},
		{"AAAA of a dual-stack name", fqdn("both"), dns.TypeAAAA, noerror(rrAAAA("both", "2001:db8::2"))},
		{"ANY below apex", fqdn("api"), dns.TypeANY, noerror(rrA("api", "192.0.2.10"), rrA("api", "192.0.2.11"))},
		{"below an empty non-terminal", fqdn("a.x"), dns.TypeA, noerror(rrA("a.x", "192.0.2.20"))},
		{"in-zone nameserver address", fqdn("ns2"), dns.TypeA, noerror(rrA("ns2", "192.0.2.53"))},

		{"NODATA TXT", fqdn("api"), dns.TypeTXT, nodata()},
		{"NODATA AAAA on an A-only name", fqdn("api"), dns.TypeAAAA, nodata()},
		{"NODATA A on an AAAA-only name", fqdn("v6"), dns.TypeA, nodata()},
		{"NODATA AAAA at apex", testZone, dns.TypeAAAA, nodata()},
		{"NODATA SOA below apex", fqdn("api"), dns.TypeSOA, nodata()},
		{"NODATA NS below apex", fqdn("api"), dns.TypeNS, nodata()},
		{"empty non-terminal A is NODATA", fqdn("x"), dns.TypeA, nodata()},
		{"empty non-terminal ANY is NODATA", fqdn("x"), dns.TypeANY, nodata()},

		{"NXDOMAIN", fqdn("nope"), dns.TypeA, nxdomain()},
		{"NXDOMAIN sibling below an empty non-terminal", fqdn("b.x"), dns.TypeA, nxdomain()},
		{"NXDOMAIN below an existing name", fqdn("deep.api"), dns.TypeA, nxdomain()},
		{"NXDOMAIN TXT", fqdn("nope"), dns.TypeTXT, nxdomain()},

		{"mixed-case question echoed", "API.Pool.EXAMPLE.test.", dns.TypeA, noerror(rrA("api", "192.0.2.10"), rrA("api", "192.0.2.11"))},
		{"mixed-case apex", "POOL.example.TEST.", dns.TypeSOA, noerror(rrSOA(0))},
		{"mixed-case NXDOMAIN", "NoPe.POOL.example.test.", dns.TypeA, nxdomain()},

		{"parent zone REFUSED", "example.test.", dns.TypeA, refused()},
		{"parent SOA REFUSED", "example.test.", dns.TypeSOA, refused()},
		{"other zone REFUSED", "www.example.org.", dns.TypeA, refused()},
		{"suffix that is not a subdomain REFUSED", "xpool.example.test.", dns.TypeA, refused()},
		{"escaped dot is not a subdomain REFUSED", `a\.pool.example.test.`, dns.TypeA, refused()},
		{"root REFUSED", ".", dns.TypeNS, refused()},
	})
}

func TestServeWithdrawn(t *testing.T) {
	names := []string{testZone, fqdn("api"), fqdn("v6"), fqdn("x"), fqdn("a.x"), fqdn("nope"), "API.POOL.example.test."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSOA, dns.TypeNS, dns.TypeTXT, dns.TypeANY}

	for _, withdraw := range []int{dns.RcodeRefused, dns.RcodeServerFailure} {
		t.Run(dns.RcodeToString[withdraw], func(t *testing.T) {
			cfg := testConfig()
			cfg.Withdraw = withdraw
			s, udp, tcp := startServer(t, cfg, false)

			var cases []answerCase
			for _, name := range names {
				for _, qtype := range types {
					cases = append(cases, answerCase{
						name:  name + " " + dns.TypeToString[qtype],
						qname: name, qtype: qtype,
						want: summary{Rcode: dns.RcodeToString[withdraw]},
					})
				}
			}
			cases = append(cases,
				answerCase{"out of zone still REFUSED", "example.test.", dns.TypeA, refused()},
				answerCase{"other zone still REFUSED", "www.example.org.", dns.TypeSOA, refused()},
			)
			t.Run("withdrawn", func(t *testing.T) { runAnswerCases(t, udp, tcp, cases) })

			// The same server answers once serving, and withdraws again.
			s.setServing(true)
			t.Run("serving", func(t *testing.T) {
				runAnswerCases(t, udp, tcp, []answerCase{
					{"api A", fqdn("api"), dns.TypeA, noerror(rrA("api", "192.0.2.10"), rrA("api", "192.0.2.11"))},
					{"nope A", fqdn("nope"), dns.TypeA, nxdomain()},
				})
			})
			s.setServing(false)
			t.Run("withdrawn again", func(t *testing.T) {
				runAnswerCases(t, udp, tcp, []answerCase{
					{"api A", fqdn("api"), dns.TypeA, summary{Rcode: dns.RcodeToString[withdraw]}},
				})
			})
		})
	}
}

// TestServeTruncation checks that a UDP reply larger than the requester's
// payload size is truncated with TC set, and that TCP carries all of it.
func TestServeTruncation(t *testing.T) {
	cfg := testConfig()
	var many []string
	var want []string
	for i := range 60 {
		ip := fmt.Sprintf("198.51.100.%d", i+1)
		many = append(many, ip)
		want = append(want, rrA("many", ip))
	}
	cfg.Records["many"] = Records{A: addrs(many...)}
	slices.Sort(want) // as rrStrings does
	_, udp, tcp := startServer(t, cfg, true)

	tests := []struct {
		name     string
		network  string
		edns     uint16 // 0: no OPT
		wantTC   bool
		wantSize int // exact answer count, or -1 for "fewer than all"
	}{
		{"udp 512", "udp", 0, true, -1},
		{"udp edns 512", "udp", 512, true, -1},
		{"udp edns 4096 capped at 1232 still fits", "udp", 4096, false, len(want)},
		{"tcp", "tcp", 0, false, len(want)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := udp
			if tt.network == "tcp" {
				addr = tcp
			}
			m := query(fqdn("many"), dns.TypeA)
			if tt.edns != 0 {
				m.SetEdns0(tt.edns, false)
			}
			r := exchange(t, tt.network, addr, m)
			if r.Truncated != tt.wantTC {
				t.Errorf("TC = %t; want %t", r.Truncated, tt.wantTC)
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
				t.Errorf("rcode %s AA %t; want NOERROR AA", dns.RcodeToString[r.Rcode], r.Authoritative)
			}
			switch {
			case tt.wantSize == -1 && len(r.Answer) >= len(want):
				t.Errorf("got %d answers; want fewer than %d", len(r.Answer), len(want))
			case tt.wantSize >= 0:
				if diff := cmp.Diff(want, rrStrings(r.Answer)); diff != "" {
					t.Errorf("answer mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}
