package resolvers

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// StubMode is how a Stub answers queries for its zone.
type StubMode int32

// Stub modes.
const (
	// StubAnswer answers authoritatively (the default).
	StubAnswer StubMode = iota
	// StubRefuse answers REFUSED, as a withdrawn self-mode site does.
	StubRefuse
	// StubSilent does not reply at all, as a dead nameserver.
	StubSilent
)

// StubConfig describes a Stub.
type StubConfig struct {
	// IP is the loopback address it listens on, port 53, UDP and TCP.
	// Required.
	IP string
	// Nameservers is the zone's apex NS RRset (names only are used);
	// required, normally the same as HierarchyConfig.Pool.
	Nameservers []Nameserver
	// A is the address every name below PoolZone (and the apex) has;
	// default IP.
	A string
	// TTL is the TTL of every record and the SOA minimum. Default 5s.
	TTL time.Duration
	// Delay is added before every reply, as distance would be (resolvers
	// prefer the nameserver that answers faster). Default none.
	Delay time.Duration
}

// StubQuery is one query a Stub received.
type StubQuery struct {
	At   time.Time
	From string // the sender's IP address
	Name string // lower case, fully qualified
	Type uint16
	Mode StubMode // how it was handled
}

// Stub is a small authoritative server for PoolZone: SOA and NS at the
// apex, an A record for every name, NODATA for other types, REFUSED outside
// the zone, switchable to REFUSED or silence for the whole zone. It
// records every query.
type Stub struct {
	cfg   StubConfig
	mode  atomic.Int32
	delay atomic.Int64 // StubConfig.Delay, then SetDelay

	mu      sync.Mutex
	queries []StubQuery
}

// StartStub starts a Stub on c.IP port 53 and shuts it down at cleanup.
func StartStub(t testing.TB, c StubConfig) *Stub {
	t.Helper()
	if err := checkLoopback4(c.IP); err != nil {
		t.Fatalf("stub IP: %v", err)
	}
	if len(c.Nameservers) == 0 {
		t.Fatal("stub: no nameservers")
	}
	if c.A == "" {
		c.A = c.IP
	}
	if c.TTL == 0 {
		c.TTL = 5 * time.Second
	}
	s := &Stub{cfg: c}
	s.delay.Store(int64(c.Delay))
	addr := net.JoinHostPort(c.IP, "53")
	for _, network := range []string{"udp", "tcp"} {
		started := make(chan struct{})
		srv := &dns.Server{Addr: addr, Net: network, Handler: s, NotifyStartedFunc: func() { close(started) }}
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			t.Fatalf("stub %s %s: %v", network, addr, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("stub %s %s did not start within 5s", network, addr)
		}
		t.Cleanup(func() {
			srv.Shutdown() //nolint:errcheck // shutdown at cleanup; nothing to do on error
			<-errc
		})
	}
	return s
}

// SetMode switches how the stub answers from the next query on.
func (s *Stub) SetMode(m StubMode) { s.mode.Store(int32(m)) }

// SetDelay changes StubConfig.Delay from the next query on.
func (s *Stub) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Queries returns every query received so far, in order.
func (s *Stub) Queries() []StubQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StubQuery(nil), s.queries...)
}

// QueriesFrom returns the queries received from ip at or after t.
func (s *Stub) QueriesFrom(ip string, t time.Time) []StubQuery {
	var out []StubQuery
	for _, q := range s.Queries() {
		if q.From == ip && !q.At.Before(t) {
			out = append(out, q)
		}
	}
	return out
}

// ServeDNS implements dns.Handler.
func (s *Stub) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	mode := StubMode(s.mode.Load())
	from, _, _ := net.SplitHostPort(w.RemoteAddr().String())
	s.mu.Lock()
	s.queries = append(s.queries, StubQuery{At: time.Now(), From: from, Name: strings.ToLower(q.Name), Type: q.Qtype, Mode: mode})
	s.mu.Unlock()
	if mode == StubSilent {
		return
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		// Simulated distance, not synchronisation: the reply leaves later.
		tm := time.NewTimer(d)
		<-tm.C
	}
	m := new(dns.Msg)
	m.SetReply(req)
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(1232, false)
	}
	name := strings.ToLower(q.Name)
	switch {
	case mode == StubRefuse || q.Qclass != dns.ClassINET || !dns.IsSubDomain(PoolZone, name):
		m.Rcode = dns.RcodeRefused
	default:
		m.Authoritative = true
		s.answer(m, name, q.Qtype)
	}
	// A write error (the resolver went away) needs nothing from a test stub.
	w.WriteMsg(m) //nolint:errcheck // see above
}

func (s *Stub) answer(m *dns.Msg, name string, qtype uint16) {
	ttl := uint32(s.cfg.TTL / time.Second)
	hdr := func(owner string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	soa := &dns.SOA{Hdr: hdr(PoolZone, dns.TypeSOA), Ns: s.cfg.Nameservers[0].Name, Mbox: "hostmaster." + PoolZone,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: ttl}
	switch {
	case qtype == dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr(m.Question[0].Name, dns.TypeA), A: net.ParseIP(s.cfg.A)})
	case name == PoolZone && qtype == dns.TypeSOA:
		m.Answer = append(m.Answer, soa)
	case name == PoolZone && qtype == dns.TypeNS:
		for _, ns := range s.cfg.Nameservers {
			m.Answer = append(m.Answer, &dns.NS{Hdr: hdr(PoolZone, dns.TypeNS), Ns: ns.Name})
		}
	default:
		m.Ns = append(m.Ns, soa)
	}
}
