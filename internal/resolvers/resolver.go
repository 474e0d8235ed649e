package resolvers

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// Kind is one of the four recursive resolvers the package starts.
type Kind string

// The resolvers, named after their Debian packages' programs.
const (
	Unbound  Kind = "unbound"       // NLnet Labs unbound (package unbound)
	BIND     Kind = "bind"          // ISC BIND 9 named (package bind9)
	PowerDNS Kind = "pdns-recursor" // PowerDNS Recursor (package pdns-recursor)
	Knot     Kind = "kresd"         // Knot Resolver (package knot-resolver)
)

// Kinds returns the four resolvers in a fixed order.
func Kinds() []Kind { return []Kind{Unbound, BIND, PowerDNS, Knot} }

// Options configures one resolver. The zero value is not enough: IP is
// required.
type Options struct {
	// IP is the loopback address the resolver sends its own queries from,
	// so that a nameserver can tell resolvers apart by source address,
	// and listens on, except BIND: named listens only on addresses
	// configured on an interface, so it listens on 127.0.0.1. Required.
	IP string
	// Port is the port it listens on (UDP and TCP). Default: one free on
	// both a moment before.
	Port int
	// TrustAnchors are DS records of zones to validate (for example the
	// pool zone's, for a signed pool zone). With none the resolver does
	// not validate: the local root is unsigned, so the real root's trust
	// anchor would make every answer bogus.
	TrustAnchors []*dns.DS
	// TrustAnchorKeys are DNSKEY trust anchors, used as their SHA-256 DS
	// (PowerDNS Recursor 4.8 takes DS anchors only), after TrustAnchors.
	TrustAnchorKeys []*dns.DNSKEY
	// Verbose logs every resolution step (unbound verbosity 4, named -d 3,
	// pdns trace=yes, kresd debug). The default logs operational messages,
	// and for pdns the trace of every failed resolution. The environment
	// variable SPDU_RESOLVERS_VERBOSE=1 sets it for every resolver.
	Verbose bool
}

// Resolver is a running recursive resolver.
type Resolver struct {
	// Kind says which program it is.
	Kind Kind
	// IP is the source address of its queries (Options.IP).
	IP string
	// Addr is where to send queries, "ip:port": Options.IP and Port, or
	// 127.0.0.1 and Port for BIND.
	Addr string
	// Dir is its working directory (configuration, cache, control socket).
	Dir string

	cmd  func() *exec.Cmd // a fresh command that starts it
	proc *testenv.Process
}

// setup renders one kind's files into dir and returns the command that
// starts it in the foreground, logging to stderr.
type setup func(t testing.TB, dir string, h *Hierarchy, o Options) func() *exec.Cmd

func setupFor(k Kind) (setup, error) {
	switch k {
	case Unbound:
		return setupUnbound, nil
	case BIND:
		return setupBIND, nil
	case PowerDNS:
		return setupPowerDNS, nil
	case Knot:
		return setupKnot, nil
	}
	return nil, fmt.Errorf("unknown resolver kind %q", k)
}

// Start starts resolver k with root hints pointing at h, checks its
// configuration with the program's own checker where it has one, and
// returns once it answers queries (within 15 s). It fails the test on
// invalid options, a missing program (CI installs the Debian packages), a
// rejected configuration, or a resolver that exits or does not answer. The
// resolver is killed at cleanup, and its log is printed if the test failed.
func Start(t testing.TB, k Kind, h *Hierarchy, o Options) *Resolver {
	t.Helper()
	s, err := setupFor(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkLoopback4(o.IP); err != nil {
		t.Fatalf("%s: Options.IP: %v", k, err)
	}
	listen := o.IP
	if k == BIND {
		listen = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = freePort(t, listen)
	}
	if os.Getenv("SPDU_RESOLVERS_VERBOSE") == "1" {
		o.Verbose = true
	}
	o.TrustAnchors = append([]*dns.DS(nil), o.TrustAnchors...)
	for _, k := range o.TrustAnchorKeys {
		ds := k.ToDS(dns.SHA256)
		if ds == nil {
			t.Fatalf("%s: trust anchor key %s: no DS can be made of it", k.Header().Name, k)
		}
		o.TrustAnchors = append(o.TrustAnchors, ds)
	}
	r := &Resolver{Kind: k, IP: o.IP, Addr: net.JoinHostPort(listen, strconv.Itoa(o.Port)), Dir: testenv.TempDir(t)}
	r.cmd = s(t, r.Dir, h, o)
	r.start(t)
	return r
}

// StartUnbound is Start(t, Unbound, h, o).
func StartUnbound(t testing.TB, h *Hierarchy, o Options) *Resolver {
	t.Helper()
	return Start(t, Unbound, h, o)
}

// StartBIND is Start(t, BIND, h, o).
func StartBIND(t testing.TB, h *Hierarchy, o Options) *Resolver {
	t.Helper()
	return Start(t, BIND, h, o)
}

// StartPowerDNS is Start(t, PowerDNS, h, o).
func StartPowerDNS(t testing.TB, h *Hierarchy, o Options) *Resolver {
	t.Helper()
	return Start(t, PowerDNS, h, o)
}

// StartKnot is Start(t, Knot, h, o).
func StartKnot(t testing.TB, h *Hierarchy, o Options) *Resolver {
	t.Helper()
	return Start(t, Knot, h, o)
}

// StartAll starts the four resolvers on the addresses ips gives (four
// loopback addresses, in the order of Kinds), each with o's other
// settings, and returns them in the order of Kinds.
func StartAll(t testing.TB, h *Hierarchy, ips [4]string, o Options) []*Resolver {
	t.Helper()
	return StartMix(t, h, 1, ips, o)
}

// StartMix is StartAll with unbound instances of unbound: the first on
// ips[0], the others on the addresses that follow it (127.0.0.10, .11, …).
// It returns them first, then BIND, PowerDNS Recursor and Knot Resolver.
func StartMix(t testing.TB, h *Hierarchy, unbound int, ips [4]string, o Options) []*Resolver {
	t.Helper()
	ip, err := netip.ParseAddr(ips[0])
	if err != nil {
		t.Fatalf("StartMix: unbound's first address: %v", err)
	}
	var rs []*Resolver
	for range unbound {
		o.IP = ip.String()
		rs = append(rs, Start(t, Unbound, h, o))
		ip = ip.Next()
	}
	for i, k := range Kinds() {
		if k != Unbound {
			o.IP = ips[i]
			rs = append(rs, Start(t, k, h, o))
		}
	}
	return rs
}

func (r *Resolver) start(t testing.TB) {
	t.Helper()
	cmd := r.cmd()
	if _, err := os.Stat(cmd.Path); err != nil {
		t.Fatalf("%s: %s not installed (Debian package %s; .ci/run installs it): %v", r.Kind, cmd.Path, packageOf(r.Kind), err)
	}
	r.proc = testenv.StartProcess(t, cmd)
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	testenv.Eventually(t, 15*time.Second, string(r.Kind)+" answers on "+r.Addr, func() bool {
		select {
		case <-r.proc.Done():
			t.Fatalf("%s exited with code %d:\n%s", r.Kind, r.proc.ExitCode(), r.proc.Output())
		default:
		}
		m := new(dns.Msg)
		m.SetQuestion(".", dns.TypeNS)
		_, _, err := c.Exchange(m, r.Addr)
		return err == nil
	})
}

// freePort returns a port of ip that was free on both UDP and TCP a moment
// ago.
func freePort(t testing.TB, ip string) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatalf("no port of %s free on both UDP and TCP", ip)
	return 0
}

// packageOf is the Debian package that ships k.
func packageOf(k Kind) string {
	switch k {
	case BIND:
		return "bind9"
	case Knot:
		return "knot-resolver"
	}
	return string(k)
}

// Restart kills the resolver and starts it again with the same
// configuration and an empty cache (every cache here lives in memory or
// is cleared at start), and returns once it answers.
func (r *Resolver) Restart(t testing.TB) {
	t.Helper()
	r.proc.Kill()
	r.start(t)
}

// Stop kills the resolver (SIGKILL) and waits for it to exit; queries then
// get no reply. Stopping twice does nothing more.
func (r *Resolver) Stop() { r.proc.Kill() }

// Output returns what the resolver logged since it was last started.
func (r *Resolver) Output() string { return r.proc.Output() }

// dsText is a DS record's presentation form without owner, TTL and class:
// "keytag algorithm digesttype DIGEST".
func dsText(ds *dns.DS) string {
	return fmt.Sprintf("%d %d %d %s", ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
}
