package e2e

import (
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// TestDNSAbused: fault 6. 100,000 random and mutated packets at the live UDP
// and TCP listeners; the daemon never crashes and answers correctly after.
func TestDNSAbused(t *testing.T) {
	t.Parallel()
	s := StartSite(t, siteOn(t, "127.0.0.1"), false)
	testenv.Eventually(t, 10*time.Second, "served", func() bool { return Rcode(s.DNSAddr) == dns.RcodeSuccess })
	good := new(dns.Msg)
	good.SetQuestion("api.pool.domain.tld.", dns.TypeA)
	good.SetEdns0(1232, true)
	seed, err := good.Pack()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	packet := func() []byte {
		if rng.IntN(4) == 0 { // pure noise
			b := make([]byte, rng.IntN(600))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			return b
		}
		b := append([]byte(nil), seed...) // a mutated real query
		for range 1 + rng.IntN(6) {
			switch rng.IntN(3) {
			case 0:
				b[rng.IntN(len(b))] = byte(rng.IntN(256))
			case 1:
				b = b[:rng.IntN(len(b))+1]
			case 2:
				b = append(b, byte(rng.IntN(256)))
			}
		}
		return b
	}
	udp, err := net.Dial("udp", s.DNSAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	const total = 100000
	start := time.Now()
	for i := range total {
		if i%10 == 9 { // every tenth over TCP, length-prefixed
			c, err := net.DialTimeout("tcp", s.DNSAddr, time.Second)
			if err != nil {
				t.Fatalf("TCP dial after %d packets: %v", i, err)
			}
			p := packet()
			c.Write(append([]byte{byte(len(p) >> 8), byte(len(p))}, p...)) //nolint:errcheck // abuse
			c.Close()
			continue
		}
		udp.Write(packet()) //nolint:errcheck // abuse; replies are not read
		if i%1000 == 999 && Rcode(s.DNSAddr) != dns.RcodeSuccess {
			// Sent packets may be dropped under the flood, never the server.
			testenv.Eventually(t, 2*time.Second, "still answering during the flood", func() bool { return Rcode(s.DNSAddr) == dns.RcodeSuccess })
		}
	}
	t.Logf("%d abusive packets sent in %s", total, time.Since(start).Round(time.Millisecond))
	testenv.Eventually(t, 5*time.Second, "answers correctly after the flood", func() bool {
		rc, addrs, _ := Query(s.DNSAddr, time.Second)
		return rc == dns.RcodeSuccess && len(addrs) == 1 && addrs[0] == "127.0.0.1"
	})
	select {
	case <-s.Daemon.done:
		t.Fatal("daemon exited during the flood")
	default:
	}
}
