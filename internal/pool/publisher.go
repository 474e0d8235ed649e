package pool

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdu/spdu-haproxy/internal/config"
)

// Published is what the publisher hands on to the DNS server: the decision
// and, when it hands out addresses, the orderings of its Members to pick
// from per response.
type Published struct {
	// Answer is the decision, with Unstable set for the short TTL.
	Answer Answer
	// Orders are orderings of indexes into Answer.Members (see Orders); nil
	// when refusing.
	Orders [][]int
}

// Policy is what the publisher decides by: dns.mode, dns.all_down, the
// evaluation interval (haproxy.poll_interval), the unstable window
// (dns.ttl) and the run command's -dry-run.
type Policy struct {
	// Mode is dns.mode: in self mode the peers are ignored.
	Mode config.DNSMode
	// AllDown is dns.all_down (pool mode only).
	AllDown config.AllDown
	// Interval is the time between two evaluations (besides Kick); Window
	// is how long an answer stays unstable after a change (dns.ttl).
	Interval, Window time.Duration
	// DryRun counts this site as up whatever the health policy decides,
	// and sheds nothing in self mode, so the zone is always served; the
	// decision is still logged and exported by the caller.
	DryRun bool
}

// Publisher is the one answer path: every interval, on Kick and after
// Apply, it reads the local site's state (self) and the peers' (peers),
// applies Decide, the stability window and the dry-run policy, and calls
// publish with the outcome when it changes (membership, capacities or
// stability). It runs in both modes; self mode is pool mode without
// peers. Its lifecycle is the daemon's: NewPublisher binds nothing, Run
// evaluates until cancelled, Prepare and Apply reload, Withdraw publishes
// the refusal of a daemon that shuts down.
type Publisher struct {
	self    func() Member
	peers   func() []Member
	publish func(Published)
	now     func() time.Time
	rng     *rand.Rand

	policy    Policy // owned by Run
	stability Stability
	last      *Published
	kick      chan struct{}
	// pending is a policy from Apply that Run has not applied.
	pending atomic.Pointer[Policy]
	// mu serializes publish calls of Run and Withdraw; withdrawn stops
	// Run from publishing after Withdraw.
	mu        sync.Mutex
	withdrawn bool
}

// OrdersPerAnswer is how many orderings are precomputed per answer: first
// addresses follow the capacity ratio to within 1/OrdersPerAnswer.
const OrdersPerAnswer = 64

// NewPublisher returns a Publisher for policy. self and peers return the
// current state (called from Run's goroutine; peers may be nil: self
// mode); publish receives each new outcome and must not block.
func NewPublisher(policy Policy, self func() Member, peers func() []Member, publish func(Published)) *Publisher {
	return &Publisher{
		policy: policy, self: self, peers: peers, publish: publish,
		now: time.Now, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5bd1e995)),
		stability: Stability{Window: policy.Window},
		kick:      make(chan struct{}, 1),
	}
}

// Kick asks Run to evaluate now instead of at the next tick (when the local
// site or a peer changes state); it never blocks.
func (p *Publisher) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// PolicyPlan is a prepared policy, from Prepare.
type PolicyPlan struct{ policy Policy }

// Prepare checks policy for Apply: the interval must be positive. It
// changes nothing.
func (p *Publisher) Prepare(policy Policy) (*PolicyPlan, error) {
	if policy.Interval <= 0 {
		return nil, errors.New("publisher: the interval must be positive")
	}
	return &PolicyPlan{policy: policy}, nil
}

// Apply hands a prepared policy to Run, which applies it before its next
// evaluation, made at once, and then publishes even if the outcome is the
// same, so that the publish function can hand out addresses and TTLs that
// changed with the reload. The stability state carries over. It never
// blocks.
func (p *Publisher) Apply(plan *PolicyPlan) {
	pol := plan.policy
	p.pending.Store(&pol)
	p.Kick()
}

// Evaluate decides now and publishes if the outcome changed; Run calls it
// on every tick, and callers may call it from the same goroutine as Run
// only (it is not safe for concurrent use). It returns what is in force.
func (p *Publisher) Evaluate() Published {
	self := p.self()
	if p.policy.DryRun {
		self.Up, self.Settled, self.Capacity, self.Shed = true, true, max(self.Capacity, 1e-3), 0
	}
	a := p.decide(self)
	if p.policy.Mode == config.ModePool {
		a = p.stability.Update(p.now(), a)
	}
	if p.last != nil && sameOutcome(p.last.Answer, a) {
		return *p.last
	}
	pub := p.published(a)
	p.last = &pub
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.withdrawn {
		p.publish(pub)
	}
	return pub
}

// Withdraw publishes the answer of a site that is going away, with this
// site counted down whatever its health (dry-run included), and keeps Run
// from publishing anything after it. The daemon calls it at shutdown,
// after Run has returned, for dns.shutdown_grace: in self mode the zone
// then answers the withdraw rcode, so resolvers move to another site at
// once; in pool mode it hands out the peers that passed their last probe
// (unstable: the short TTL), and refuses only when none did and all_down
// is "refuse". A REFUSED there would make PowerDNS Recursor throttle this
// nameserver for the name for a minute, and fail its clients if the other
// site failed within that minute (docs/resolvers.md).
func (p *Publisher) Withdraw() {
	self := p.self()
	self.Up, self.Settled = false, true
	a := p.decide(self)
	if !a.Refuse {
		a.Unstable = true
	}
	pub := p.published(a)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.withdrawn = true
	p.publish(pub)
}

// decide applies Decide to self and, in pool mode only, the peers (self
// mode ignores them, and so does a Publisher without peers).
func (p *Publisher) decide(self Member) Answer {
	var peers []Member
	if p.peers != nil && p.policy.Mode == config.ModePool {
		peers = p.peers()
	}
	return Decide(p.policy.Mode, p.policy.AllDown, self, peers)
}

// published is a with its Orders, drawn from p.rng and weighted by the
// members' capacities; a refusal has none. It publishes nothing.
func (p *Publisher) published(a Answer) Published {
	pub := Published{Answer: a}
	if !a.Refuse {
		w := make([]float64, len(a.Members))
		for i, m := range a.Members {
			w[i] = m.Capacity
		}
		pub.Orders = Orders(w, OrdersPerAnswer, p.rng)
	}
	return pub
}

// sameOutcome compares membership, capacities (to 1%) and stability.
func sameOutcome(a, b Answer) bool {
	if !Same(a, b) || a.Unstable != b.Unstable || math.Abs(a.Shed-b.Shed) > 0.005 {
		return false
	}
	for i := range a.Members {
		if d := a.Members[i].Capacity - b.Members[i].Capacity; d > 0.01 || d < -0.01 || a.Members[i].Name != b.Members[i].Name {
			return false
		}
	}
	return true
}

// Run evaluates at once and then every interval, on Kick and after Apply,
// until ctx is cancelled; it returns nil.
func (p *Publisher) Run(ctx context.Context) error {
	tick := time.NewTicker(p.policy.Interval)
	defer tick.Stop()
	for {
		if np := p.pending.Swap(nil); np != nil {
			if np.Interval != p.policy.Interval {
				tick.Reset(np.Interval)
			}
			p.policy, p.stability.Window, p.last = *np, np.Window, nil
		}
		p.Evaluate()
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-p.kick:
		}
	}
}
