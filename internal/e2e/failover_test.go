package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// unboundBinary is Debian's unbound; .ci/run installs it.
const unboundBinary = "/usr/sbin/unbound"

// startUnbound runs unbound on 127.0.0.1:port with a stub zone for
// pool.domain.tld pointing at the given nameservers ("ip@port"), killed
// at cleanup.
func startUnbound(t *testing.T, port int, stubs ...string) *testenv.Process {
	t.Helper()
	if _, err := os.Stat(unboundBinary); err != nil {
		t.Fatalf("%s (install Debian's unbound package): %v", unboundBinary, err)
	}
	dir := testenv.TempDir(t)
	conf := fmt.Sprintf(`server:
    interface: 127.0.0.1@%d
    port: %d
    do-not-query-localhost: no
    do-ip6: no
    username: ""
    chroot: ""
    directory: %q
    pidfile: %q
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    so-reuseport: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    qname-minimisation: no
remote-control:
    control-enable: no
stub-zone:
    name: "pool.domain.tld"
`, port, port, dir, filepath.Join(dir, "unbound.pid"))
	for _, s := range stubs {
		conf += "    stub-addr: " + s + "\n"
	}
	p := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "/usr/sbin/unbound-checkconf", p).CombinedOutput(); err != nil {
		t.Fatalf("unbound-checkconf: %v\n%s", err, out)
	}
	return testenv.StartProcess(t, exec.Command(unboundBinary, "-d", "-c", p))
}

// sample is one client iteration: what the resolver said and whether the
// HTTP request to the first address worked.
type sample struct {
	at    time.Time
	addrs []string
	ok    bool
}

// client resolves api.pool.domain.tld through the resolver and fetches
// through the first address every 50 ms until stopped.
type client struct {
	resolver string
	port     int
	mu       sync.Mutex
	samples  []sample
	stop     chan struct{}
	done     chan struct{}
}

func startClient(resolver string, httpPort int) *client {
	c := &client{resolver: resolver, port: httpPort, stop: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: time.Second}
	go func() {
		defer close(c.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			rc, addrs, _ := testenv.Query(c.resolver, 2*time.Second)
			s := sample{at: time.Now(), addrs: addrs}
			if rc == dns.RcodeSuccess && len(addrs) > 0 {
				resp, err := hc.Get(fmt.Sprintf("http://%s:%d/", addrs[0], c.port))
				if err == nil {
					s.ok = resp.StatusCode == http.StatusOK
					resp.Body.Close()
				}
			}
			c.mu.Lock()
			c.samples = append(c.samples, s)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *client) Stop() { close(c.stop); <-c.done }

// since returns the samples taken after t.
func (c *client) since(t time.Time) []sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sample
	for _, s := range c.samples {
		if s.at.After(t) {
			out = append(out, s)
		}
	}
	return out
}

// lastWith returns the time of the last sample after t whose answer holds
// ip, or t if none does.
func lastWith(ss []sample, t time.Time, ip string) time.Time {
	last := t
	for _, s := range ss {
		if slices.Contains(s.addrs, ip) {
			last = s.at
		}
	}
	return last
}

func failures(ss []sample) int {
	n := 0
	for _, s := range ss {
		if !s.ok {
			n++
		}
	}
	return n
}

// twoSites starts alpha on 127.0.0.2 and beta on 127.0.0.3 with the same
// ports, each the other's backup, and unbound in front.
func twoSites(t *testing.T) (alpha, beta *site, resolver string, httpPort int) {
	t.Helper()
	dnsPort, backupPort := testenv.FreePort(t), testenv.FreePort(t)
	httpPort = testenv.FreePort(t)
	one := func(name, ip, peer string) *site {
		return startSite(t, testenv.SiteOpts{IP: ip,
			HAProxy: testenv.SiteHAProxy{Frontend: fmt.Sprintf("%s:%d", ip, httpPort),
				Backup: fmt.Sprintf("%s:%d", peer, backupPort), ListenBackup: fmt.Sprintf("%s:%d", ip, backupPort)},
			Daemon: testenv.DaemonConfig{Site: name, DNSListen: []string{fmt.Sprintf("%s:%d", ip, dnsPort)}, API: []string{ip}}}, false)
	}
	alpha, beta = one("alpha", "127.0.0.2", "127.0.0.3"), one("beta", "127.0.0.3", "127.0.0.2")
	for _, s := range []*site{alpha, beta} {
		testenv.Eventually(t, 10*time.Second, s.Name+" served", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	}
	uport := testenv.FreePort(t)
	resolver = fmt.Sprintf("127.0.0.1:%d", uport)
	unbound := startUnbound(t, uport, fmt.Sprintf("127.0.0.2@%d", dnsPort), fmt.Sprintf("127.0.0.3@%d", dnsPort))
	testenv.Eventually(t, 10*time.Second, "unbound resolves", func() bool {
		select {
		case <-unbound.Done():
			t.Fatalf("unbound exited with code %d:\n%s", unbound.ExitCode(), unbound.Output())
		default:
		}
		rc, _, _ := testenv.Query(resolver, time.Second)
		return rc == dns.RcodeSuccess
	})
	return alpha, beta, resolver, httpPort
}

// TestFailoverBehindResolver: two sites behind a real recursive resolver.
// Kill one site's backends, then (second case) the whole site; measure the
// time until every resolution returns only the survivor, the failed client
// requests, and the time until the restored site gets traffic again.
// Target with TTL 5 s: survivor only within TTL + 2 s; back within
// TTL + rise x poll_interval + 2 s.
func TestFailoverBehindResolver(t *testing.T) {
	const ttl = 5 * time.Second
	for _, whole := range []bool{false, true} {
		name := "backends"
		if whole {
			name = "whole-site"
		}
		t.Run(name, func(t *testing.T) {
			a, b, resolver, httpPort := twoSites(t)
			c := startClient(resolver, httpPort)
			defer c.Stop()
			// The victim is whichever site the resolver hands out now, so
			// the test never waits on the resolver's choice of nameserver.
			var first []string
			testenv.Eventually(t, 10*time.Second, "clients resolve a site", func() bool {
				ss := c.since(time.Time{})
				if len(ss) == 0 || len(ss[len(ss)-1].addrs) == 0 {
					return false
				}
				first = ss[len(ss)-1].addrs
				return true
			})
			v := a
			if first[0] == b.IP {
				v = b
			}
			victim := v.IP

			kill := time.Now()
			if whole {
				v.Daemon.Kill()
				v.HAProxy.Kill()
			} else {
				for _, be := range v.Backends {
					be.Stop()
				}
			}
			// Wait until the victim has been absent from answers for a full TTL
			// plus margin: then no cache can still hold it.
			limit := ttl + 2*time.Second
			var gone time.Duration
			testenv.Eventually(t, 3*limit, "the victim gone from every answer", func() bool {
				ss := c.since(kill)
				last := lastWith(ss, kill, victim)
				gone = last.Sub(kill)
				return len(ss) > 0 && time.Since(last) > ttl+time.Second
			})
			failed := failures(c.since(kill))
			t.Logf("%s killed: the victim last resolved %s after the kill (target %s); %d of %d client requests failed",
				name, gone.Round(10*time.Millisecond), limit, failed, len(c.since(kill)))
			if gone > limit {
				t.Errorf("the victim still resolved %s after the kill, want within %s", gone, limit)
			}

			if !whole && failed > 5 {
				t.Errorf("%d client requests failed while the victim's backends were down; its backup server should carry them", failed)
			}

			restore := time.Now()
			if whole {
				v.HAProxy.Restart(t)
				v.Daemon = startDaemon(t, v.CfgPath)
			} else {
				for _, be := range v.Backends {
					be.Start(t)
				}
			}
			served := testenv.Eventually(t, 5*time.Second, "the victim's nameserver serves again", func() bool { return testenv.Rcode(v.DNSAddr) == dns.RcodeSuccess })
			// Whether the resolver asks the victim again is its own choice:
			// unbound picks among nameservers at random within an RTT band
			// at each cache expiry, and shuns one that timed out for up to
			// infra-host-ttl (900 s). Measure it, bounded, and report it.
			window := 20 * time.Second
			backAt := time.Time{}
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for time.Since(restore) < window && backAt.IsZero() {
				<-tick.C
				for _, s := range c.since(restore) {
					if slices.Contains(s.addrs, victim) {
						backAt = s.at
						break
					}
				}
			}
			if backAt.IsZero() {
				t.Logf("%s restored: the victim's nameserver serves after %s; the resolver did not return the victim within %s", name, served.Round(10*time.Millisecond), window)
			} else {
				t.Logf("%s restored: the victim's nameserver serves after %s; resolver returns the victim after %s (target %s)",
					name, served.Round(10*time.Millisecond), backAt.Sub(restore).Round(10*time.Millisecond), ttl+2*poll+2*time.Second)
			}
			if f := failures(c.since(restore.Add(ttl))); f > 0 {
				t.Errorf("%d client requests failed more than a TTL after the restore", f)
			}
		})
	}
}
