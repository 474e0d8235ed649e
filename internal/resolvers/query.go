package resolvers

import (
	"slices"
	"time"

	"github.com/miekg/dns"
)

// NoReply is the Rcode of a Result when no reply came within the timeout.
const NoReply = -1

// Result is one query's outcome as a client sees it.
type Result struct {
	// Sent is when the query left.
	Sent time.Time
	// Took is the time until the reply, or the timeout.
	Took time.Duration
	// Rcode is the reply's rcode, or NoReply.
	Rcode int
	// Attempts is how many times the query was sent (a Sampler retries
	// on no reply; Resolve sends once).
	Attempts int
	// Addrs are the A and AAAA addresses of the answer section, in order
	// (CNAMEs are followed by the resolver and skipped here).
	Addrs []string
	// TTL is the smallest TTL of those address records, in seconds (0
	// without any).
	TTL uint32
	// AD is the reply's AD bit: the resolver validated the answer.
	AD bool
	// Sigs are the key tags of the RRSIGs over those address records,
	// sorted (they tell which key signed them). Only a query with the DO
	// bit (ResolveDNSSEC) gets RRSIGs.
	Sigs []uint16
}

// OK reports whether the reply was NOERROR with at least one address.
func (r Result) OK() bool { return r.Rcode == dns.RcodeSuccess && len(r.Addrs) > 0 }

// Has reports whether the answer holds address ip.
func (r Result) Has(ip string) bool {
	for _, a := range r.Addrs {
		if a == ip {
			return true
		}
	}
	return false
}

// Resolve asks the resolver at addr ("ip:port") for name and qtype over UDP
// with the RD bit, as a stub resolver does, and waits at most timeout.
func Resolve(addr, name string, qtype uint16, timeout time.Duration) Result {
	return resolve(addr, name, qtype, timeout, false)
}

// ResolveDNSSEC is Resolve as dig +dnssec asks: with the AD bit (as dig
// does by default) and EDNS0 with the DO bit, so that the reply carries
// the RRSIGs the resolver validated (Result.Sigs) besides its AD bit.
func ResolveDNSSEC(addr, name string, qtype uint16, timeout time.Duration) Result {
	return resolve(addr, name, qtype, timeout, true)
}

func resolve(addr, name string, qtype uint16, timeout time.Duration, dnssec bool) Result {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if dnssec {
		m.AuthenticatedData = true
		m.SetEdns0(1232, true)
	}
	c := &dns.Client{Net: "udp", Timeout: timeout}
	res := Result{Sent: time.Now(), Rcode: NoReply, Attempts: 1}
	r, _, err := c.Exchange(m, addr)
	res.Took = time.Since(res.Sent)
	if err != nil {
		return res
	}
	res.Rcode, res.AD = r.Rcode, r.AuthenticatedData
	for _, rr := range r.Answer {
		var ip string
		switch a := rr.(type) {
		case *dns.A:
			ip = a.A.String()
		case *dns.AAAA:
			ip = a.AAAA.String()
		case *dns.RRSIG:
			if a.TypeCovered == dns.TypeA || a.TypeCovered == dns.TypeAAAA {
				res.Sigs = append(res.Sigs, a.KeyTag)
			}
			continue
		default:
			continue
		}
		res.Addrs = append(res.Addrs, ip)
		if ttl := rr.Header().Ttl; res.TTL == 0 || ttl < res.TTL {
			res.TTL = ttl
		}
	}
	slices.Sort(res.Sigs)
	return res
}
