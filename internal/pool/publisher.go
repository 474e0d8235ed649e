package pool

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Published is what the publisher hands to the DNS server: the decision and,
// when it hands out addresses, the orderings of its Members to pick from per
// response.
type Published struct {
	// Answer is the decision, with Unstable set for the short TTL.
	Answer Answer
	// Orders are orderings of indexes into Answer.Members (see Orders); nil
	// when refusing.
	Orders [][]int
}

// Publisher re-evaluates the policy every interval (which SetPolicy may
// change) from the latest local and peer state and publishes when the
// outcome changes (membership, capacities or stability). It owns the
// Stability tracker.
type Publisher struct {
	mode     Mode
	allDown  AllDown
	interval time.Duration
	self     func() Member
	peers    func() []Member
	publish  func(Published)
	now      func() time.Time
	rng      *rand.Rand

	stability Stability
	last      *Published
	kick      chan struct{}
	// pending is a policy change from SetPolicy that Run has not applied.
	pending atomic.Pointer[policy]
}

// policy is what SetPolicy changes.
type policy struct {
	allDown          AllDown
	interval, window time.Duration
}

// OrdersPerAnswer is how many orderings are precomputed per answer: first
// addresses follow the capacity ratio to within 1/OrdersPerAnswer.
const OrdersPerAnswer = 64

// NewPublisher returns a Publisher. self and peers return the current state
// (called from Run's goroutine); publish receives each new outcome and must
// not block. unstableWindow is how long an answer stays unstable after a
// change (typically the normal TTL).
func NewPublisher(mode Mode, allDown AllDown, interval, unstableWindow time.Duration,
	self func() Member, peers func() []Member, publish func(Published)) *Publisher {
	return &Publisher{
		mode: mode, allDown: allDown, interval: interval, self: self, peers: peers, publish: publish,
		now: time.Now, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5bd1e995)),
		stability: Stability{Window: unstableWindow},
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

// SetPolicy changes, on a configuration reload, what to hand out when every
// site is down, the evaluation interval and the unstable window (as in
// NewPublisher). Run applies it before its next evaluation, which it makes
// at once, and then publishes even if the outcome is the same, so that the
// publish function can hand out addresses and TTLs that changed with the
// reload. The stability state carries over. It never blocks.
func (p *Publisher) SetPolicy(allDown AllDown, interval, unstableWindow time.Duration) {
	p.pending.Store(&policy{allDown: allDown, interval: interval, window: unstableWindow})
	p.Kick()
}

// Evaluate decides now and publishes if the outcome changed; Run calls it on
// every tick, and callers may call it from the same goroutine as Run only
// (it is not safe for concurrent use). It returns what is in force.
func (p *Publisher) Evaluate() Published {
	var peers []Member
	if p.peers != nil {
		peers = p.peers()
	}
	a := p.stability.Update(p.now(), Decide(p.mode, p.allDown, p.self(), peers))
	if p.last != nil && sameOutcome(p.last.Answer, a) {
		return *p.last
	}
	pub := Published{Answer: a}
	if !a.Refuse {
		w := make([]float64, len(a.Members))
		for i, m := range a.Members {
			w[i] = m.Capacity
		}
		pub.Orders = Orders(w, OrdersPerAnswer, p.rng)
	}
	p.last = &pub
	p.publish(pub)
	return pub
}

// sameOutcome compares membership, capacities (to 1%) and stability.
func sameOutcome(a, b Answer) bool {
	if !Same(a, b) || a.Unstable != b.Unstable {
		return false
	}
	for i := range a.Members {
		if d := a.Members[i].Capacity - b.Members[i].Capacity; d > 0.01 || d < -0.01 || a.Members[i].Name != b.Members[i].Name {
			return false
		}
	}
	return true
}

// Run evaluates at once and then every interval, on Kick and after
// SetPolicy, until ctx is cancelled.
func (p *Publisher) Run(ctx context.Context) error {
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		if np := p.pending.Swap(nil); np != nil {
			p.allDown, p.stability.Window, p.last = np.allDown, np.window, nil
			if np.interval != p.interval {
				p.interval = np.interval
				tick.Reset(np.interval)
			}
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
