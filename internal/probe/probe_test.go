package probe

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// peerSite is a real HTTPS server on loopback playing a peer site's
// frontend: /status is the service check, /.well-known/spdu/status the spdu
// status. healthy and status can be changed while it runs.
type peerSite struct {
	url     string
	healthy atomic.Bool
	status  atomic.Value // string
	hosts   chan string
}

func startPeer(t *testing.T, ca *testenv.TestCA) *peerSite {
	t.Helper()
	p := &peerSite{hosts: make(chan string, 1000)}
	p.healthy.Store(true)
	p.status.Store(`{"serving":true,"usable":5,"total":5}`)
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		select {
		case p.hosts <- r.Host + " " + r.TLS.ServerName:
		default:
		}
		if !p.healthy.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok spdu\n")) //nolint:errcheck
	})
	mux.HandleFunc("/.well-known/spdu/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(p.status.Load().(string))) //nolint:errcheck
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.Cert}}}
	go srv.ServeTLS(ln, "", "") //nolint:errcheck // closed at cleanup
	t.Cleanup(func() { srv.Close() })
	p.url = "https://" + ln.Addr().String()
	return p
}

func run(t *testing.T, peers []Peer) (*Prober, *sync.Mutex, *[]Result) {
	t.Helper()
	var mu sync.Mutex
	var changes []Result
	pr, err := New(zerolog.Nop(), Config{Peers: peers}, func(r Result) { mu.Lock(); changes = append(changes, r); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pr.Run(ctx); close(done) }() //nolint:errcheck // always nil
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return pr, &mu, &changes
}

func TestProbeRiseFallAndCapacity(t *testing.T) {
	ca := testenv.NewTestCA(t, []string{"api.domain.tld"})
	site := startPeer(t, ca)
	pr, mu, changes := run(t, []Peer{{
		Name: "beta", URL: site.url + "/status", Host: "api.domain.tld", Expect: "spdu",
		StatusURL: site.url + "/.well-known/spdu/status", Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond,
		Rise: 2, Fall: 2, RootCAs: ca.Pool,
	}})
	if pr.Snapshot()[0].Up {
		t.Fatal("peer up before any probe")
	}
	testenv.Eventually(t, 5*time.Second, "peer up", func() bool { return pr.Snapshot()[0].Up })
	if got := <-site.hosts; got != "api.domain.tld api.domain.tld" {
		t.Errorf("Host and SNI = %q, want the service name for both", got)
	}
	site.status.Store(`{"serving":true,"usable":2,"total":5}`)
	testenv.Eventually(t, 5*time.Second, "capacity 0.4", func() bool { return pr.Snapshot()[0].Capacity == 0.4 })
	site.status.Store(`{"serving":false,"usable":5,"total":5}`)
	testenv.Eventually(t, 5*time.Second, "capacity 0 while the peer says withdrawn", func() bool { return pr.Snapshot()[0].Capacity == 0 })
	site.status.Store(`not json`)
	testenv.Eventually(t, 5*time.Second, "capacity 1 when unknown", func() bool { return pr.Snapshot()[0].Capacity == 1 && pr.Snapshot()[0].Up })

	site.healthy.Store(false)
	testenv.Eventually(t, 5*time.Second, "peer down", func() bool { return !pr.Snapshot()[0].Up })
	r := pr.Snapshot()[0]
	if r.Error == "" || r.Settled != true {
		t.Errorf("down result %+v: want an error and a settled state", r)
	}
	site.healthy.Store(true)
	testenv.Eventually(t, 5*time.Second, "peer up again", func() bool { return pr.Snapshot()[0].Up })
	mu.Lock()
	defer mu.Unlock()
	if len(*changes) != 3 || !(*changes)[0].Up || (*changes)[1].Up || !(*changes)[2].Up {
		t.Errorf("changes %+v, want up, down, up", *changes)
	}
}

// TestProbeVerifiesTLS: the certificate must be valid for Host; a probe
// with the wrong name or an unknown CA fails unless verification is off.
func TestProbeVerifiesTLS(t *testing.T) {
	ca := testenv.NewTestCA(t, []string{"api.domain.tld"})
	site := startPeer(t, ca)
	base := Peer{URL: site.url + "/status", Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1}
	wrongName, unknownCA, optOut := base, base, base
	wrongName.Name, wrongName.Host, wrongName.RootCAs = "wrong-name", "other.domain.tld", ca.Pool
	unknownCA.Name, unknownCA.Host = "unknown-ca", "api.domain.tld"
	optOut.Name, optOut.Host, optOut.InsecureSkipVerify = "opt-out", "other.domain.tld", true
	pr, _, _ := run(t, []Peer{wrongName, unknownCA, optOut})
	testenv.Eventually(t, 5*time.Second, "opt-out peer up", func() bool { return pr.Snapshot()[2].Up })
	testenv.Eventually(t, 5*time.Second, "all probed", func() bool {
		s := pr.Snapshot()
		return s[0].Error != "not probed yet" && s[1].Error != "not probed yet"
	})
	s := pr.Snapshot()
	if s[0].Up || s[1].Up {
		t.Errorf("TLS failures counted as up: %+v", s[:2])
	}
	t.Logf("wrong name: %s; unknown CA: %s", s[0].Error, s[1].Error)
}

// TestProbeReload: a reload that changes one peer's settings, removes one
// and adds one keeps the changed peer up throughout, drops the removed one
// and brings the new one up after its rise.
func TestProbeReload(t *testing.T) {
	ca := testenv.NewTestCA(t, []string{"api.domain.tld"})
	beta, gamma, delta := startPeer(t, ca), startPeer(t, ca), startPeer(t, ca)
	peer := func(name string, site *peerSite, rise int) Peer {
		return Peer{Name: name, URL: site.url + "/status", Host: "api.domain.tld", Interval: 20 * time.Millisecond,
			Timeout: 500 * time.Millisecond, Rise: rise, Fall: 2, RootCAs: ca.Pool}
	}
	pr, _, _ := run(t, []Peer{peer("beta", beta, 2), peer("gamma", gamma, 2)})
	testenv.Eventually(t, 5*time.Second, "beta and gamma up", func() bool {
		s := pr.Snapshot()
		return s[0].Up && s[1].Up
	})

	// beta gets a new rise count (and a fresh CA pool, equal in content);
	// gamma goes; delta comes, with a rise of 3 probes.
	changed := peer("beta", beta, 5)
	changed.RootCAs = ca.Pool.Clone()
	plan, err := pr.Prepare(Config{Peers: []Peer{peer("delta", delta, 3), changed}})
	if err != nil {
		t.Fatal(err)
	}
	pr.Apply(plan)
	testenv.Eventually(t, 5*time.Second, "snapshot in the new order", func() bool {
		s := pr.Snapshot()
		return len(s) == 2 && s[0].Name == "delta" && s[1].Name == "beta"
	})
	betaDown := false
	testenv.Eventually(t, 5*time.Second, "delta up, beta up all along", func() bool {
		s := pr.Snapshot()
		betaDown = betaDown || !s[1].Up
		return s[0].Up
	})
	if betaDown {
		t.Fatal("beta went down across the reload")
	}
	// gamma is no longer probed: its hosts channel stays quiet.
	for len(gamma.hosts) > 0 {
		<-gamma.hosts
	}
	beta.healthy.Store(false)
	testenv.Eventually(t, 5*time.Second, "beta down after its new fall count", func() bool { return !pr.Snapshot()[1].Up })
	if n := len(gamma.hosts); n != 0 {
		t.Errorf("gamma probed %d times after it was removed", n)
	}
	// A CA file that cannot be read is refused by name.
	bad := peer("beta", beta, 2)
	bad.CAFile = "/nonexistent/ca.pem"
	if _, err := pr.Prepare(Config{Peers: []Peer{bad}}); err == nil || !strings.Contains(err.Error(), "peers.beta.ca_file") {
		t.Errorf("Prepare with a missing CA file: %v, want an error naming peers.beta.ca_file", err)
	}
}

// TestFirstProbeDecides: a peer's first probe decides its state at once
// (up when it passes, down when it fails); after that rise and fall apply.
func TestFirstProbeDecides(t *testing.T) {
	for _, c := range []struct {
		first, want bool
	}{{true, true}, {false, false}} {
		st := newState(Peer{Rise: 3, Fall: 3}, time.Now())
		if changed := st.observe(c.first); st.rf.Up() != c.want || changed != c.want || !st.rf.Settled() {
			t.Errorf("first probe %v: up %v changed %v settled %v; want up %v", c.first, st.rf.Up(), changed, st.rf.Settled(), c.want)
		}
		// Then rise and fall: one opposite probe changes nothing.
		if st.observe(!c.first); st.rf.Up() != c.want {
			t.Errorf("after the first probe %v, one opposite probe changed the state", c.first)
		}
	}
}
