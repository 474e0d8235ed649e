package dnsserve

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// TestServeGuards sends malformed or unsupported requests as raw UDP
// datagrams and checks the error reply chosen by guard.
func TestServeGuards(t *testing.T) {
	_, udp, _ := startServer(t, testConfig(), true)

	apexQ := dns.Question{Name: testZone, Qtype: dns.TypeSOA, Qclass: dns.ClassINET}
	apiQ := dns.Question{Name: fqdn("api"), Qtype: dns.TypeA, Qclass: dns.ClassINET}
	withOPT := func(m *dns.Msg, version uint8) *dns.Msg {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(1232)
		opt.SetVersion(version)
		m.Extra = append(m.Extra, opt)
		return m
	}

	tests := []struct {
		name string
		req  *dns.Msg
		want summary
	}{
		{
			name: "QDCOUNT 0 is FORMERR",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 1}},
			want: summary{Rcode: "FORMERR", Opcode: "QUERY"},
		},
		{
			name: "QDCOUNT 0 with EDNS is FORMERR with OPT",
			req:  withOPT(&dns.Msg{MsgHdr: dns.MsgHdr{Id: 2}}, 0),
			want: summary{Rcode: "FORMERR", Opcode: "QUERY", OPT: wantOPT(true, false)},
		},
		{
			name: "QDCOUNT 2 is FORMERR",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 3}, Question: []dns.Question{apiQ, apexQ}},
			want: summary{Rcode: "FORMERR", Opcode: "QUERY", Question: question(fqdn("api"), dns.TypeA, dns.ClassINET)},
		},
		{
			name: "NOTIFY is NOTIMP",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 4, Opcode: dns.OpcodeNotify, Authoritative: true}, Question: []dns.Question{apexQ}},
			want: summary{Rcode: "NOTIMP", Opcode: "NOTIFY", Question: question(testZone, dns.TypeSOA, dns.ClassINET)},
		},
		{
			name: "UPDATE is NOTIMP",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 5, Opcode: dns.OpcodeUpdate}, Question: []dns.Question{apexQ}},
			want: summary{Rcode: "NOTIMP", Opcode: "UPDATE", Question: question(testZone, dns.TypeSOA, dns.ClassINET)},
		},
		{
			name: "IQUERY is NOTIMP",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 6, Opcode: dns.OpcodeIQuery}, Question: []dns.Question{apiQ}},
			want: summary{Rcode: "NOTIMP", Opcode: "IQUERY", Question: question(fqdn("api"), dns.TypeA, dns.ClassINET)},
		},
		{
			name: "class CHAOS is REFUSED",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 7}, Question: []dns.Question{{Name: "version.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}}},
			want: summary{Rcode: "REFUSED", Opcode: "QUERY", Question: question("version.bind.", dns.TypeTXT, dns.ClassCHAOS)},
		},
		{
			name: "class CHAOS in the zone is REFUSED",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 8}, Question: []dns.Question{{Name: fqdn("api"), Qtype: dns.TypeA, Qclass: dns.ClassCHAOS}}},
			want: summary{Rcode: "REFUSED", Opcode: "QUERY", Question: question(fqdn("api"), dns.TypeA, dns.ClassCHAOS)},
		},
		{
			name: "class ANY is REFUSED",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 9}, Question: []dns.Question{{Name: fqdn("api"), Qtype: dns.TypeA, Qclass: dns.ClassANY}}},
			want: summary{Rcode: "REFUSED", Opcode: "QUERY", Question: question(fqdn("api"), dns.TypeA, dns.ClassANY)},
		},
		{
			name: "EDNS version 1 is BADVERS with a version 0 OPT",
			req:  withOPT(&dns.Msg{MsgHdr: dns.MsgHdr{Id: 10}, Question: []dns.Question{apiQ}}, 1),
			want: summary{Rcode: "BADVERS", Opcode: "QUERY", Question: question(fqdn("api"), dns.TypeA, dns.ClassINET), OPT: wantOPT(true, false)},
		},
		{
			name: "two OPT records is FORMERR without OPT, as Knot",
			req:  withOPT(withOPT(&dns.Msg{MsgHdr: dns.MsgHdr{Id: 11}, Question: []dns.Question{apiQ}}, 0), 0),
			want: summary{Rcode: "FORMERR", Opcode: "QUERY", Question: question(fqdn("api"), dns.TypeA, dns.ClassINET)},
		},
		{
			name: "AXFR over UDP is NOTIMP, as Knot",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 12}, Question: []dns.Question{{Name: testZone, Qtype: dns.TypeAXFR, Qclass: dns.ClassINET}}},
			want: summary{Rcode: "NOTIMP", Opcode: "QUERY", Question: question(testZone, dns.TypeAXFR, dns.ClassINET)},
		},
		{
			name: "IXFR over UDP is NOTAUTH, as Knot",
			req:  &dns.Msg{MsgHdr: dns.MsgHdr{Id: 13}, Question: []dns.Question{{Name: testZone, Qtype: dns.TypeIXFR, Qclass: dns.ClassINET}}},
			want: summary{Rcode: "NOTAUTH", Opcode: "QUERY", Question: question(testZone, dns.TypeIXFR, dns.ClassINET)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawExchange(t, udp, mustPack(t, tt.req), 2*time.Second)
			if r == nil {
				t.Fatal("no reply within 2s")
			}
			if r.Id != tt.req.Id || !r.Response {
				t.Errorf("reply id %d QR %t; want id %d QR true", r.Id, r.Response, tt.req.Id)
			}
			if diff := cmp.Diff(tt.want, summarize(r)); diff != "" {
				t.Errorf("reply mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServeDropsResponses checks that a packet with QR set gets no reply,
// while the same packet without QR on the same socket does.
func TestServeDropsResponses(t *testing.T) {
	_, udp, _ := startServer(t, testConfig(), true)

	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(m *dns.Msg) {
		t.Helper()
		if _, err := c.Write(mustPack(t, m)); err != nil {
			t.Fatal(err)
		}
	}
	read := func(wait time.Duration) *dns.Msg {
		t.Helper()
		if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		return r
	}

	resp := query(fqdn("api"), dns.TypeA)
	resp.Response = true
	send(resp)
	// The one place a deadline is the assertion: nothing may arrive.
	if r := read(300 * time.Millisecond); r != nil {
		t.Fatalf("got a reply to a QR=1 packet:\n%v", r)
	}

	q := query(fqdn("api"), dns.TypeA)
	send(q)
	r := read(2 * time.Second)
	if r == nil || r.Id != q.Id || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("control query: got %v; want NOERROR reply with id %d", r, q.Id)
	}
}

// TestServeSurvivesGarbage sends packets that do not parse, over UDP and
// TCP, and checks that any reply is FORMERR and that the server still
// answers afterwards.
func TestServeSurvivesGarbage(t *testing.T) {
	_, udp, tcp := startServer(t, testConfig(), true)

	valid := mustPack(t, query(fqdn("api"), dns.TypeA))
	header := func(qd, an, ns, ar uint16) []byte {
		b := make([]byte, 12)
		binary.BigEndian.PutUint16(b[0:], 0xbeef)
		binary.BigEndian.PutUint16(b[4:], qd)
		binary.BigEndian.PutUint16(b[6:], an)
		binary.BigEndian.PutUint16(b[8:], ns)
		binary.BigEndian.PutUint16(b[10:], ar)
		return b
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	random[2] &^= 0x80 // not a response, so the server does parse it

	packets := []struct {
		name string
		b    []byte
	}{
		{"one byte", []byte{0}},
		{"short header", valid[:7]},
		{"header only, QDCOUNT 1", header(1, 0, 0, 0)},
		{"truncated question", valid[:len(valid)-3]},
		{"label longer than packet", append(header(1, 0, 0, 0), 63, 'a', 'b')},
		{"compression pointer loop", append(header(1, 0, 0, 0), 0xc0, 12, 0, 1, 0, 1)},
		{"counts far beyond the data", append(header(0xffff, 0xffff, 0xffff, 0xffff), valid[12:]...)},
		{"OPT with truncated rdata", append(append(header(1, 0, 0, 1), valid[12:]...), 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 8, 0, 10)},
		{"random bytes", random},
	}
	for _, p := range packets {
		t.Run("udp/"+p.name, func(t *testing.T) {
			if r := rawExchange(t, udp, p.b, 200*time.Millisecond); r != nil && r.Rcode != dns.RcodeFormatError {
				t.Errorf("reply rcode %s; want FORMERR or no reply", dns.RcodeToString[r.Rcode])
			}
			assertAnswers(t, "udp", udp)
		})
		t.Run("tcp/"+p.name, func(t *testing.T) {
			c, err := net.Dial("tcp", tcp)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			framed := binary.BigEndian.AppendUint16(nil, uint16(len(p.b)))
			if _, err := c.Write(append(framed, p.b...)); err != nil {
				t.Fatal(err)
			}
			assertAnswers(t, "tcp", tcp)
		})
	}
}

// assertAnswers fails t unless the server at addr answers an A query.
func assertAnswers(t *testing.T, network, addr string) {
	t.Helper()
	r := exchange(t, network, addr, query(fqdn("api"), dns.TypeA))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Fatalf("server no longer answers: rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
}
