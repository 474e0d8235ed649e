package dnsserve

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// fakeWriter is a dns.ResponseWriter that packs replies into a reused
// buffer, like the real UDP writer, and keeps the last one.
type fakeWriter struct {
	remote  net.Addr
	buf     []byte
	msg     *dns.Msg
	writes  int
	panicOn int // RemoteAddr panics on this call number (1-based); 0 never
	calls   int
}

func newFakeWriter() *fakeWriter {
	return &fakeWriter{
		remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353},
		buf:    make([]byte, dns.MaxMsgSize),
	}
}

func (w *fakeWriter) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr {
	w.calls++
	if w.calls == w.panicOn {
		panic("fakeWriter: injected panic")
	}
	return w.remote
}
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	if _, err := m.PackBuffer(w.buf); err != nil {
		return err
	}
	w.msg = m
	w.writes++
	return nil
}
func (w *fakeWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	w.msg = m
	w.writes++
	return len(b), nil
}
func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

// TestServeDNSRecoversPanic makes the writer panic in the middle of a reply
// and checks that ServeDNS recovers and answers SERVFAIL instead.
func TestServeDNSRecoversPanic(t *testing.T) {
	s, err := New(zerolog.Nop(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.setServing(true)
	w := newFakeWriter()
	w.panicOn = 1
	req := query(fqdn("api"), dns.TypeA)

	s.ServeDNS(w, req) // must not panic

	if w.writes != 1 {
		t.Fatalf("%d replies written; want 1", w.writes)
	}
	want := summary{Rcode: "SERVFAIL", Opcode: "QUERY", Question: question(fqdn("api"), dns.TypeA, dns.ClassINET)}
	if diff := cmp.Diff(want, summarize(w.msg)); diff != "" {
		t.Errorf("reply mismatch (-want +got):\n%s", diff)
	}
}

// TestServeDNSDropsResponses covers guard's QR check for callers of ServeDNS
// other than Run's servers, which drop responses before parsing.
func TestServeDNSDropsResponses(t *testing.T) {
	s, err := New(zerolog.Nop(), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	w := newFakeWriter()
	req := query(fqdn("api"), dns.TypeA)
	req.Response = true
	s.ServeDNS(w, req)
	if w.writes != 0 {
		t.Errorf("ServeDNS wrote a reply to a response:\n%v", w.msg)
	}
}

func BenchmarkServeDNS(b *testing.B) {
	cfg := testConfig()
	cfg.RRL.Rate = -1 // one client far over any rate
	s, err := New(zerolog.Nop(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	s.setServing(true)
	w := newFakeWriter()
	req := query(fqdn("api"), dns.TypeA)
	req.SetEdns0(1232, false)

	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, req)
	}
	if w.msg == nil || len(w.msg.Answer) != 2 {
		b.Fatalf("unexpected reply: %v", w.msg)
	}
}
