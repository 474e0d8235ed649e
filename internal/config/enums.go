package config

import "github.com/miekg/dns"

// DNSMode is "dns.mode": what the pool zone hands out for its service names.
type DNSMode string

const (
	// ModeSelf answers with this site's own addresses while it is healthy
	// and with the withdraw rcode while it is not: the delegated-subdomain
	// technique. It is pool mode without peers.
	ModeSelf DNSMode = "self"
	// ModePool also hands out every peer site whose probe passes, ordered by
	// spare capacity (the original spdu behaviour).
	ModePool DNSMode = "pool"
)

// AgentMode is "agent.mode": how agent-check weights are chosen.
type AgentMode string

const (
	// AgentStatic advertises 100% for every known server.
	AgentStatic AgentMode = "static"
	// AgentAdaptive advertises response-time- and error-aware weights (see
	// health.Weigher).
	AgentAdaptive AgentMode = "adaptive"
)

// Withdraw is "dns.withdraw": the rcode of every in-zone query while the
// site is withdrawn.
type Withdraw string

const (
	// WithdrawRefused answers REFUSED (RFC 1035 §4.1.1 rcode 5): resolvers
	// try the zone's next nameserver at once and do not mark this one down.
	WithdrawRefused Withdraw = "refused"
	// WithdrawServfail answers SERVFAIL (rcode 2).
	WithdrawServfail Withdraw = "servfail"
)

// Rcode returns the DNS rcode of w (RFC 1035 §4.1.1): dns.RcodeRefused or
// dns.RcodeServerFailure.
func (w Withdraw) Rcode() int {
	if w == WithdrawServfail {
		return dns.RcodeServerFailure
	}
	return dns.RcodeRefused
}

// AllDown is "dns.all_down": what pool mode answers when neither this site
// nor any peer can serve.
type AllDown string

const (
	// AllDownRefuse answers the withdraw rcode (fail closed): resolvers try
	// the other sites' nameservers, which may know better.
	AllDownRefuse AllDown = "refuse"
	// AllDownAll answers every configured address (fail open, as gdnsd and
	// PowerDNS do).
	AllDownAll AllDown = "all"
)
