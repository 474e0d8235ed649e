package dnsserve

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// FuzzRespond drives the whole query path, bytes in and bytes or nothing
// out, over both transports. It checks that nothing panics (a recovered
// panic would show as SERVFAIL or in the log), that every reply parses,
// echoes the ID with QR set and fits the UDP limit, and that whenever the
// fast path takes a request its reply is byte for byte the slow path's.
// The seeds are the differential test's requests; CI runs them as a test.
func FuzzRespond(f *testing.F) {
	for _, v := range knotVariants(f) {
		f.Add(v.req, v.network == "tcp")
	}
	cookie := dq(fqdn("api"), dns.TypeA, withOption(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE,
		Cookie: "0102030405060708" + "01000000" + "6553f100" + "0011223344556677"}))
	f.Add(mustPack(f, cookie), false)

	var logs bytes.Buffer
	cfg := diffConfig()
	s, err := New(zerolog.New(&logs).Level(zerolog.ErrorLevel), cfg)
	if err != nil {
		f.Fatal(err)
	}
	s.setServing(true)
	fixed := time.Unix(1_700_000_000, 0)
	s.clock = func() time.Time { return fixed }
	from := benchClient

	f.Fuzz(func(t *testing.T, msg []byte, tcp bool) {
		out := make([]byte, 0, maxTCPReply)
		reply := s.respond(out, msg, from, tcp)
		if logs.Len() > 0 {
			t.Fatalf("logged an error: %s", logs.String())
		}
		if reply == nil {
			return
		}
		if !tcp && len(reply) > ednsUDPSize {
			t.Errorf("UDP reply of %d bytes; at most %d", len(reply), ednsUDPSize)
		}
		m := new(dns.Msg)
		if err := m.Unpack(reply); err != nil {
			t.Fatalf("reply does not parse: %v\n%x", err, reply)
		}
		if !m.Response || m.Id != binary.BigEndian.Uint16(msg) {
			t.Errorf("reply QR %t ID %d; want QR and ID %d", m.Response, m.Id, binary.BigEndian.Uint16(msg))
		}
		if m.Rcode == dns.RcodeServerFailure {
			t.Errorf("SERVFAIL: only a recovered panic answers that with this config")
		}
		var q fastQuery
		if parseFast(msg, &q) {
			slow := s.respondSlow(nil, msg, s.snap.Load(), 0, false, from, tcp)
			if !bytes.Equal(reply, slow) {
				t.Errorf("fast path reply differs from the slow path's:\nfast %x\nslow %x", reply, slow)
			}
		}
	})
}
