package shed

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spdu/spdu-haproxy/internal/haproxy"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestUtilization(t *testing.T) {
	srv := func(scur, slim, qcur int) haproxy.Server {
		return haproxy.Server{Name: "s", Status: "UP", Weight: 100, Usable: true, Scur: scur, Slim: slim, Qcur: qcur}
	}
	for _, c := range []struct {
		name   string
		st     haproxy.BackendStats
		rps    float64
		u      float64
		signal string
	}{
		{"no limits anywhere", haproxy.BackendStats{Servers: []haproxy.Server{srv(5, 0, 0)}}, 0, 0, ""},
		{"servers half full", haproxy.BackendStats{Servers: []haproxy.Server{srv(2, 4, 0), srv(2, 4, 0)}}, 0, 0.5, "servers"},
		{"one server without maxconn: no server signal", haproxy.BackendStats{Servers: []haproxy.Server{srv(4, 4, 0), srv(9, 0, 0)}}, 0, 0, ""},
		{"queue above full servers", haproxy.BackendStats{Qcur: 4, Servers: []haproxy.Server{srv(4, 4, 0), srv(4, 4, 0)}}, 0, 1.5, "queue"},
		{"server queues count", haproxy.BackendStats{Servers: []haproxy.Server{srv(4, 4, 2), srv(4, 4, 2)}}, 0, 1.5, "queue"},
		{"backup and down servers left out", haproxy.BackendStats{Servers: []haproxy.Server{srv(1, 4, 0),
			{Name: "b", Backup: true, Usable: true, Scur: 100, Slim: 1}, {Name: "d", Status: "DOWN", Scur: 0, Slim: 0}}}, 0, 0.25, "servers"},
		{"frontend sessions", haproxy.BackendStats{Frontend: &haproxy.FrontendStats{Scur: 900, Slim: 1000}}, 0, 0.9, "frontend sessions"},
		{"frontend rate limit", haproxy.BackendStats{Frontend: &haproxy.FrontendStats{Rate: 120, RateLim: 100}}, 0, 1.2, "frontend session rate"},
		{"declared capacity", haproxy.BackendStats{Frontend: &haproxy.FrontendStats{ReqRate: 300}}, 400, 0.75, "declared capacity"},
		{"the largest wins", haproxy.BackendStats{Frontend: &haproxy.FrontendStats{ReqRate: 300, Scur: 10, Slim: 100},
			Servers: []haproxy.Server{srv(3, 4, 0)}}, 1000, 0.75, "servers"},
	} {
		u, signal := Utilization(c.st, c.rps)
		if u != c.u || signal != c.signal {
			t.Errorf("%s: Utilization = %v (%q), want %v (%q)", c.name, u, signal, c.u, c.signal)
		}
	}
}

// plant simulates a site under an offered load: L is the load in units of
// the site's capacity when nothing is shed. The fraction shed reaches the
// site late: resolvers' caches turn over within a TTL and clients reconnect,
// modelled as a dead time of 1 s and then a first-order lag of one TTL.
type plant struct {
	ttl   float64
	delay []float64 // p over the last second, one entry per poll
	peff  float64
	rng   *rand.Rand
	noise float64
}

func (pl *plant) step(p, load, dt float64) float64 {
	pl.delay = append(pl.delay, p)
	old := pl.delay[0]
	if len(pl.delay) > int(1/dt) {
		pl.delay = pl.delay[1:]
	}
	pl.peff += (old - pl.peff) * dt / pl.ttl
	u := load * (1 - pl.peff)
	if pl.noise > 0 {
		u += (pl.rng.Float64()*2 - 1) * pl.noise
	}
	return max(0, u)
}

// run drives a controller against the plant with polls every 500 ms for
// the loads given per second, and returns the fraction and utilization at
// each poll.
func run(t *testing.T, cfg Config, noise float64, loads []float64) (ps, us []float64) {
	t.Helper()
	c := NewController(cfg)
	pl := &plant{ttl: 5, rng: rand.New(rand.NewPCG(1, 2)), noise: noise}
	const dt = 0.5
	p := 0.0
	for i, load := range loads {
		for half := range 2 {
			now := t0.Add(time.Duration(2*i+half) * 500 * time.Millisecond)
			u := pl.step(p, load, dt)
			next := c.Update(now, u, 0)
			if d := next - p; d > c.cfg.MaxStep*dt+1e-9 || d < -c.cfg.MaxStep*dt-1e-9 {
				t.Fatalf("at %s the fraction moved %.3f in one poll; at most %.3f", now.Sub(t0), d, c.cfg.MaxStep*dt)
			}
			p = next
			ps, us = append(ps, p), append(us, u)
		}
	}
	return ps, us
}

func loads(seconds int, load float64) []float64 {
	out := make([]float64, seconds)
	for i := range out {
		out[i] = load
	}
	return out
}

// reversals counts how often the fraction's direction of change flips.
func reversals(ps []float64) int {
	n, dir := 0, 0
	for i := 1; i < len(ps); i++ {
		d := 0
		switch {
		case ps[i] > ps[i-1]+1e-9:
			d = 1
		case ps[i] < ps[i-1]-1e-9:
			d = -1
		}
		if d != 0 && dir != 0 && d != dir {
			n++
		}
		if d != 0 {
			dir = d
		}
	}
	return n
}

// logTrace logs the utilization and the fraction every 10 s.
func logTrace(t *testing.T, ps, us []float64) {
	t.Helper()
	for i := 0; i < len(ps); i += 20 {
		t.Logf("t=%3ds  u=%.2f  p=%.3f", i/2, us[i], ps[i])
	}
}

// TestControllerConverges: an offered load of 1.5 times the site's
// capacity, with a 5 s TTL between a change and its effect (and noise on
// the measurement): the controller brings the utilization into the band
// around the target without overshooting into oscillation, moves at most
// MaxStep per second, and lets go when the load stops.
func TestControllerConverges(t *testing.T) {
	for _, noise := range []float64{0, 0.03} {
		cfg := Config{}
		offered := append(loads(150, 1.5), loads(60, 0.3)...)
		ps, us := run(t, cfg, noise, offered)
		t.Logf("noise %.2f:", noise)
		logTrace(t, ps, us)
		// Settled by 90 s: inside the band (plus the noise) from then until
		// the load stops, and the fraction near 1 - 0.8/1.5.
		for i := 180; i < 300; i++ {
			if us[i] < 0.8-0.05-noise-0.02 || us[i] > 0.8+0.05+noise+0.02 {
				t.Fatalf("noise %.2f: at %ds u = %.3f, outside the band around 0.8", noise, i/2, us[i])
			}
		}
		if p := ps[299]; p < 0.43 || p > 0.5 {
			t.Errorf("noise %.2f: fraction %.3f at 150 s, want about %.3f", noise, p, 1-0.8/1.5)
		}
		if n := reversals(ps[:300]); n > 2 {
			t.Errorf("noise %.2f: the fraction changed direction %d times under a steady load; want at most 2", noise, n)
		}
		// The load stops: the fraction falls back to 0, never rising.
		if n := reversals(ps[300:]); n > 0 || ps[len(ps)-1] != 0 {
			t.Errorf("noise %.2f: after the load stopped: %d reversals, fraction %.3f at the end; want 0 and 0", noise, n, ps[len(ps)-1])
		}
	}
}

// TestControllerQuietAndFloor: under the target the controller sheds
// nothing; an operator's floor is in force alone and leaves the
// controller's own fraction untouched.
func TestControllerQuietAndFloor(t *testing.T) {
	c := NewController(Config{})
	for i := range 100 {
		if p := c.Update(t0.Add(time.Duration(i)*500*time.Millisecond), 0.6, 0); p != 0 {
			t.Fatalf("shed %.3f at utilization 0.6", p)
		}
		if p := c.Update(t0.Add(time.Duration(i)*500*time.Millisecond+time.Millisecond), 0.6, 0.5); p != 0.5 {
			t.Fatalf("with a floor of 0.5: %.3f", p)
		}
	}
	if c.Fraction() != 0 {
		t.Errorf("the floor moved the controller's own fraction to %.3f", c.Fraction())
	}
	// Even far above the target the controller stops at MaxFraction.
	for i := range 1000 {
		c.Update(t0.Add(time.Hour+time.Duration(i)*time.Second), 5, 0)
	}
	if p := c.Fraction(); p != 0.9 {
		t.Errorf("fraction %.3f under a huge load, want MaxFraction 0.9", p)
	}
	// A gap of a minute between polls moves at most 2 s worth.
	before := c.Fraction()
	c.Update(t0.Add(2*time.Hour), 0, 0)
	if d := before - c.Fraction(); d > 0.05*2+1e-9 {
		t.Errorf("a one-hour gap moved the fraction by %.3f", d)
	}
}
