package testenv

import (
	"io"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Query asks addr for api.pool.domain.tld. A over UDP; it returns the
// rcode (-1 when no reply came within timeout), the A addresses in answer
// order and the time it took.
func Query(addr string, timeout time.Duration) (rcode int, addrs []string, took time.Duration) {
	m := new(dns.Msg)
	m.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	start := time.Now()
	r, _, err := c.Exchange(m, addr)
	took = time.Since(start)
	if err != nil {
		return -1, nil, took
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addrs = append(addrs, a.A.String())
		}
	}
	return r.Rcode, addrs, took
}

// Rcode is Query's rcode with a 300 ms timeout.
func Rcode(addr string) int {
	rc, _, _ := Query(addr, 300*time.Millisecond)
	return rc
}

// AgentAsk sends one agent-send line to the agent at addr, as HAProxy's
// agent-check does, and returns the reply without its newline, or "dial:
// ERROR" when nothing listens there.
func AgentAsk(addr, line string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second)) //nolint:errcheck // the read fails otherwise
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "write: " + err.Error()
	}
	b, _ := io.ReadAll(c)
	return strings.TrimSuffix(string(b), "\n")
}
