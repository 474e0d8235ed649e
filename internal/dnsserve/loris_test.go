package dnsserve

import (
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// dialMany opens n TCP connections to addr and closes them at cleanup.
func dialMany(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns
}

// closedByServer reports whether the server has closed c: a read returns
// EOF or a reset rather than timing out.
func closedByServer(c net.Conn) bool {
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Millisecond)); err != nil {
		return true
	}
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// timedQuery returns how long an A query over network took; it fails t if
// the answer is wrong.
func timedQuery(t *testing.T, network, addr string) time.Duration {
	t.Helper()
	start := time.Now()
	r := exchange(t, network, addr, query(fqdn("api"), dns.TypeA))
	took := time.Since(start)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Fatalf("%s: rcode %s, %d answers", network, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return took
}

// TestSlowLoris holds 500 TCP connections open, half idle and half having
// sent one byte of a query, and checks that UDP and a fresh TCP connection
// are still answered quickly, that the slow senders are cut off after
// TCPQueryTimeout and the idle ones are kept until TCPIdleTimeout.
func TestSlowLoris(t *testing.T) {
	cfg := testConfig()
	cfg.TCPQueryTimeout = 300 * time.Millisecond
	cfg.TCPIdleTimeout = time.Minute // longer than the test
	_, udp, tcp := startServer(t, cfg, true)

	conns := dialMany(t, tcp, 500)
	slow := conns[:250]
	for _, c := range slow {
		if _, err := c.Write([]byte{0}); err != nil { // half a length prefix
			t.Fatal(err)
		}
	}

	var took []time.Duration
	for range 10 {
		took = append(took, timedQuery(t, "udp", udp), timedQuery(t, "tcp", tcp))
	}
	slices.Sort(took)
	t.Logf("with 500 connections held: UDP and fresh TCP queries took median %v, max %v", took[len(took)/2], took[len(took)-1])
	// A median, not a single sample, so a scheduling hiccup under -race
	// on a busy machine cannot fail the test.
	if med := took[len(took)/2]; med > 50*time.Millisecond {
		t.Errorf("median query time %v with 500 connections held; want under 50ms", med)
	}

	testenv.Eventually(t, 5*time.Second, "slow senders cut off", func() bool {
		for _, c := range slow {
			if !closedByServer(c) {
				return false
			}
		}
		return true
	})
	for i, c := range conns[250:260] {
		if closedByServer(c) {
			t.Errorf("idle connection %d closed before TCPIdleTimeout", i)
		}
	}
}

// TestTCPConnectionCap fills the cap with idle connections and checks that
// a new client is still served, at the expense of the longest idle one.
func TestTCPConnectionCap(t *testing.T) {
	cfg := testConfig()
	cfg.TCPMaxConns = 20
	cfg.TCPIdleTimeout = time.Minute
	s, udp, tcp := startServer(t, cfg, true)

	conns := dialMany(t, tcp, 20)
	testenv.Eventually(t, 5*time.Second, "20 connections registered", func() bool { return s.conns.count() == 20 })
	timedQuery(t, "tcp", tcp) // the 21st connection
	timedQuery(t, "udp", udp)
	// Which one was idle the longest depends on when the server's
	// goroutines started; exactly one must go.
	closed := map[int]bool{}
	testenv.Eventually(t, 5*time.Second, "an idle connection evicted", func() bool {
		for i, c := range conns {
			if !closed[i] && closedByServer(c) {
				closed[i] = true
			}
		}
		return len(closed) > 0
	})
	if len(closed) != 1 {
		t.Errorf("%d connections closed to make room for one; want 1", len(closed))
	}
}

// TestTCPPipelining sends ten queries in one write and reads the ten
// replies in order on the same connection (RFC 7766 section 6.2.1.1).
func TestTCPPipelining(t *testing.T) {
	_, _, tcp := startServer(t, testConfig(), true)
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var batch []byte
	for i := range 10 {
		m := query(fqdn("api"), dns.TypeA)
		if i%2 == 1 {
			m = query(fqdn("nope"), dns.TypeA)
		}
		m.Id = uint16(1000 + i)
		b := mustPack(t, m)
		batch = append(batch, byte(len(b)>>8), byte(len(b)))
		batch = append(batch, b...)
	}
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	dc := &dns.Conn{Conn: c}
	for i := range 10 {
		r, err := dc.ReadMsg()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		wantRcode := dns.RcodeSuccess
		if i%2 == 1 {
			wantRcode = dns.RcodeNameError
		}
		if r.Id != uint16(1000+i) || r.Rcode != wantRcode {
			t.Errorf("reply %d: id %d rcode %s; want id %d rcode %s", i, r.Id, dns.RcodeToString[r.Rcode], 1000+i, dns.RcodeToString[wantRcode])
		}
	}
	// A zero length prefix ends the conversation.
	if _, err := c.Write([]byte{0, 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read after a zero-length query: %v; want EOF", err)
	}
}

// TestTCPIdleTimeout checks that a connection that sends nothing after its
// last reply is closed after TCPIdleTimeout, and one that keeps asking is
// not.
func TestTCPIdleTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.TCPIdleTimeout = 300 * time.Millisecond
	_, _, tcp := startServer(t, cfg, true)
	conns := dialMany(t, tcp, 1)
	start := time.Now()
	took := testenv.Eventually(t, 5*time.Second, "idle connection closed", func() bool { return closedByServer(conns[0]) })
	if took < 250*time.Millisecond {
		t.Errorf("idle connection closed after %v; want about TCPIdleTimeout (300ms)", time.Since(start))
	}
}
