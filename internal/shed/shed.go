// Package shed owns load shedding's policy: the site's utilization from
// the HAProxy counters each poll already reads, and the controller that
// turns it into a shed fraction: the share of new clients the site sends
// elsewhere (in self mode by answering the withdraw rcode to that share of
// the queries for its service names, in pool mode by lowering the spare
// capacity it offers). It is pure: every call passes the time, nothing
// here reads a socket, keeps a goroutine or answers DNS.
package shed

import (
	"math"
	"time"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
)

// Utilization returns the site's utilization u (1.0 = at capacity) from
// one poll of `show stat` (HAProxy management guide §9.1: scur, slim,
// rate, rate_lim, req_rate, qcur), and which signal gave it. It is the
// largest of the signals that apply:
//
//	frontend sessions   scur / slim of the frontend (its maxconn)
//	frontend rate       rate / rate_lim ("rate-limit sessions"), when set
//	servers             Σ scur / Σ slim over the usable servers, when every
//	                    one of them has a maxconn ("slim")
//	queue               1 + Σ qcur / Σ slim, when requests wait in the
//	                    backend's or a server's queue (every server full)
//	declared capacity   req_rate of the frontend / capacityRPS, when set
//
// The frontend signals need st.Frontend (haproxy.Runtime.ShowSite). With
// none that applies it returns 0 and "": shedding then never acts, which
// the daemon says once. Servers only limit sessions with a maxconn, so
// setting one on each server is what makes the servers signal meaningful.
func Utilization(st haproxy.BackendStats, capacityRPS float64) (u float64, signal string) {
	consider := func(v float64, name string) {
		if v > u {
			u, signal = v, name
		}
	}
	if fe := st.Frontend; fe != nil {
		if fe.Slim > 0 {
			consider(float64(fe.Scur)/float64(fe.Slim), "frontend sessions")
		}
		if fe.RateLim > 0 {
			consider(float64(fe.Rate)/float64(fe.RateLim), "frontend session rate")
		}
		if capacityRPS > 0 {
			consider(float64(fe.ReqRate)/capacityRPS, "declared capacity")
		}
	}
	scur, slim, qcur, limited := 0, 0, st.Qcur, true
	usable := 0
	for _, s := range st.Servers {
		if s.Backup || !s.Usable {
			continue
		}
		usable++
		if s.Slim <= 0 {
			limited = false
		}
		scur += s.Scur
		slim += s.Slim
		qcur += s.Qcur
	}
	if usable > 0 && limited {
		consider(float64(scur)/float64(slim), "servers")
		if qcur > 0 {
			consider(1+float64(qcur)/float64(slim), "queue")
		}
	}
	return u, signal
}

// Config is the controller's policy (the [shed] table).
type Config struct {
	// Target is the utilization the controller holds the site near
	// (shed.target); default 0.8.
	Target float64
	// MaxFraction is the most the controller sheds, 0 to 1
	// (shed.max_fraction): some clients must still get an answer from a
	// site that is up. Default 0.9.
	MaxFraction float64
	// Gain is how fast the fraction follows the error: the change per
	// second per unit of utilization above or below the target
	// (shed.gain); default 0.1.
	Gain float64
	// MaxStep bounds the change per second (shed.max_step); default 0.05.
	// The effect of a change reaches the site only after resolvers' caches
	// turn over (dns.ttl) and clients open new connections, so the
	// controller must be slow against that delay.
	MaxStep float64
	// Deadband is the hysteresis: while the utilization is within it of
	// the target, the fraction holds (shed.deadband); default 0.05.
	Deadband float64
	// Window is the time constant of the moving average the controller
	// acts on; the daemon sets it to dns.ttl, the time resolvers' caches
	// take to turn over, so that it acts on the load that a change of the
	// fraction can affect, not on single polls. Default and minimum 1 s.
	Window time.Duration
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Target <= 0 {
		c.Target = 0.8
	}
	if c.MaxFraction <= 0 {
		c.MaxFraction = 0.9
	}
	if c.Gain <= 0 {
		c.Gain = 0.1
	}
	if c.MaxStep <= 0 {
		c.MaxStep = 0.05
	}
	if c.Deadband <= 0 {
		c.Deadband = 0.05
	}
	c.Window = max(c.Window, time.Second)
	return c
}

// maxDT caps the time one Update may account for, in seconds, so a long
// gap between polls (a hung runtime API) never turns into one big jump.
const maxDT = 2.0

// UtilizationCap is the most utilization the controller counts: an
// overloaded site with a long queue counts as twice its capacity, so one
// burst cannot wind the fraction up for long after it ended.
const UtilizationCap = 2.0

// Controller holds the site's utilization near the target by the shed
// fraction p: an integral controller on a moving average, with a dead
// band (hysteresis) and a bounded rate of change, so that it converges
// without oscillating although its effect arrives late. Each Update, with
// Δt the time since the previous one in seconds (at most 2):
//
//	ū += (min(u, UtilizationCap) - ū) x (1 - exp(-Δt / Window))
//	e = ū - Target
//	|e| <= Deadband:  p holds
//	otherwise:        p += clamp(Gain x e, -MaxStep, +MaxStep) x Δt
//	p = clamp(p, 0, MaxFraction)
//
// The fraction in force is max(p, the operator's floor). It is not safe for
// concurrent use: one poller owns it.
type Controller struct {
	cfg  Config
	p    float64
	avg  float64 // ū
	last time.Time
}

// NewController returns a Controller for cfg that starts at 0.
func NewController(cfg Config) *Controller { return &Controller{cfg: cfg.withDefaults()} }

// SetConfig changes the policy (on a reload); the fraction carries over,
// clamped to the new MaxFraction.
func (c *Controller) SetConfig(cfg Config) {
	c.cfg = cfg.withDefaults()
	c.p = min(c.p, c.cfg.MaxFraction)
}

// Update feeds the utilization u measured at now and returns the fraction
// to shed: the controller's own, raised to floor (the operator's manual
// shed, 0 to 1) when that is higher.
func (c *Controller) Update(now time.Time, u, floor float64) float64 {
	dt := 0.0
	if !c.last.IsZero() && now.After(c.last) {
		dt = min(now.Sub(c.last).Seconds(), maxDT)
	}
	c.last = now
	u = max(0, min(u, UtilizationCap))
	if dt == 0 && c.avg == 0 {
		c.avg = u // the first reading starts the average
	}
	c.avg += (u - c.avg) * (1 - math.Exp(-dt/c.cfg.Window.Seconds()))
	e := c.avg - c.cfg.Target
	if e > c.cfg.Deadband || e < -c.cfg.Deadband {
		c.p += max(-c.cfg.MaxStep, min(c.cfg.MaxStep, c.cfg.Gain*e)) * dt
		c.p = max(0, min(c.cfg.MaxFraction, c.p))
	}
	return max(c.p, floor)
}

// Fraction returns the controller's own fraction, without any floor.
func (c *Controller) Fraction() float64 { return c.p }

// Average returns the moving average of the utilization it acts on (ū).
func (c *Controller) Average() float64 { return c.avg }
