package resolvers

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSamplerRetries checks the client's retry that TestSecondFailure
// relies on: against a loopback nameserver that drops every other query,
// each sample with Attempts 2 gets its answer (the dropped ones on the
// second attempt), and with Attempts 1 the dropped ones are NoReply.
func TestSamplerRetries(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if n.Add(1)%2 == 1 {
			return // dropped, as unbound past its discard-timeout
		}
		m := new(dns.Msg)
		m.SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 5 IN A 127.0.0.2")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m) //nolint:errcheck // the client counts a lost reply
	})}
	go srv.ActivateAndServe()            //nolint:errcheck // ends at Shutdown
	t.Cleanup(func() { srv.Shutdown() }) //nolint:errcheck
	r := &Resolver{Kind: Unbound, Addr: pc.LocalAddr().String()}

	for _, attempts := range []int{1, 2} {
		// One query at a time (Every > Attempts×Timeout), so the drops
		// alternate with the answers as the server counts them.
		s := StartSampler(t, SamplerConfig{Every: 500 * time.Millisecond, Timeout: 200 * time.Millisecond, Attempts: attempts, Limit: 1600 * time.Millisecond}, r)
		s.wg.Wait() // it stops by itself at Limit
		res := s.Results(r)
		if len(res) < 3 {
			t.Fatalf("attempts %d: %d samples in 1.6 s, want at least 3", attempts, len(res))
		}
		var ok, retried, noReply int
		for _, x := range res {
			switch {
			case x.Rcode == NoReply:
				noReply++
			case x.OK() && x.Attempts == 2:
				retried++
				ok++
			case x.OK():
				ok++
			}
		}
		if attempts == 2 && (ok != len(res) || retried != len(res)) {
			t.Errorf("attempts 2: %d of %d answered, %d on the retry; want all, all on the retry", ok, len(res), retried)
		}
		if attempts == 1 && (noReply == 0 || ok == 0 || retried != 0) {
			t.Errorf("attempts 1: %d answered, %d no reply, %d retried; want both answers and drops, no retry", ok, noReply, retried)
		}
		n.Store(0)
	}
}
