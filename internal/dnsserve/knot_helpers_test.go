package dnsserve

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// knotd is the Knot DNS daemon of the Debian package "knot".
const knotd = "/usr/sbin/knotd"

// diffIdentity is the identity (NSID, CHAOS TXT) both servers announce.
const diffIdentity = "site-a"

// diffConfig is testConfig plus a name whose A RRset does not fit in 512
// bytes, so that truncation is compared too.
func diffConfig() Config {
	cfg := testConfig()
	var many []string
	for i := range 60 {
		many = append(many, fmt.Sprintf("198.51.100.%d", i+1))
	}
	cfg.Records["many"] = Records{A: addrs(many...)}
	cfg.Identity = diffIdentity
	cfg.RRL.Rate = -1 // Knot runs without its rrl module
	return cfg
}

// knotZone renders cfg as a zone file with the SOA values buildZone uses.
func knotZone(cfg Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL %d\n", cfg.Zone, int(cfg.TTL/time.Second))
	fmt.Fprintf(&b, "@ SOA %s %s 1 %d %d %d %d\n", cfg.Nameservers[0], cfg.Hostmaster,
		soaRefresh, soaRetry, soaExpire, int(cfg.TTL/time.Second))
	for _, ns := range cfg.Nameservers {
		fmt.Fprintf(&b, "@ NS %s\n", ns)
	}
	for owner, r := range cfg.Records {
		for _, a := range r.A {
			fmt.Fprintf(&b, "%s A %s\n", owner, a)
		}
		for _, a := range r.AAAA {
			fmt.Fprintf(&b, "%s AAAA %s\n", owner, a)
		}
	}
	return b.String()
}

// startKnot runs knotd in the foreground on 127.0.0.1 with cfg's zone and
// returns its address once it answers. Cleanup stops it. The test is
// skipped where knotd is not installed (CI installs it: .ci/run).
func startKnot(t *testing.T, cfg Config) string {
	t.Helper()
	if _, err := os.Stat(knotd); err != nil {
		t.Fatalf("%s not installed (Debian package knot; .ci/run installs it): %v", knotd, err)
	}
	dir := t.TempDir()
	port := freeUDPTCPPort(t)
	zoneFile := filepath.Join(dir, "zone")
	if err := os.WriteFile(zoneFile, []byte(knotZone(cfg)), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`server:
    listen: 127.0.0.1@%d
    rundir: %s
    identity: %s
    nsid: %s
    version: ""
database:
    storage: %s
template:
  - id: default
    storage: %s
zone:
  - domain: %s
    file: %s
log:
  - target: stderr
    any: warning
`, port, dir, diffIdentity, diffIdentity, dir, dir, cfg.Zone, zoneFile)
	confFile := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(knotd, "-c", confFile)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start knotd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("knotd output:\n%s", logs.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := &dns.Client{Net: "udp", Timeout: 100 * time.Millisecond}
	testenv.Eventually(t, 10*time.Second, "knotd answers", func() bool {
		select {
		case <-exited:
			t.Fatalf("knotd exited:\n%s", logs.String())
		default:
		}
		r, _, err := c.Exchange(query(cfg.Zone, dns.TypeSOA), addr)
		return err == nil && r.Rcode == dns.RcodeSuccess
	})
	return addr
}

// freeUDPTCPPort returns a port of 127.0.0.1 that was free on both UDP and
// TCP a moment ago.
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free on both UDP and TCP")
	return 0
}

// sendRaw sends the request b over network to addr and returns the raw
// reply, or nil if none arrives within wait (or, over TCP, the server
// closes the connection first).
func sendRaw(t *testing.T, network, addr string, b []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	if network == "tcp" {
		b = append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 65535)
	if network == "udp" {
		n, err := c.Read(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	var prefix [2]byte
	if _, err := readFull(c, prefix[:]); err != nil {
		return nil
	}
	n := int(binary.BigEndian.Uint16(prefix[:]))
	if _, err := readFull(c, buf[:n]); err != nil {
		return nil
	}
	return buf[:n]
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// wireSummary is what the differential test compares of a reply.
type wireSummary struct {
	Reply         bool
	Rcode         string
	AA, TC        bool
	RD, CD        bool
	Question      []string // exact, case included
	Answer        []string
	Authority     []string
	Additional    []string // OPT excluded
	EDNS          string   // "" without OPT
	NSID          string
	Unparseable   bool
	Opcode        string
	QuestionCount int
}

// summarizeWire parses a raw reply (nil: none) into a wireSummary.
func summarizeWire(b []byte) wireSummary {
	if b == nil {
		return wireSummary{}
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return wireSummary{Reply: true, Unparseable: true}
	}
	s := wireSummary{
		Reply: true, AA: m.Authoritative, TC: m.Truncated, RD: m.RecursionDesired, CD: m.CheckingDisabled,
		Answer: rrStrings(m.Answer), Authority: rrStrings(m.Ns), Opcode: dns.OpcodeToString[m.Opcode],
		QuestionCount: len(m.Question),
	}
	rcode := m.Rcode
	for _, q := range m.Question {
		s.Question = append(s.Question, q.String())
	}
	var extra []dns.RR
	for _, rr := range m.Extra {
		opt, ok := rr.(*dns.OPT)
		if !ok {
			extra = append(extra, rr)
			continue
		}
		rcode = opt.ExtendedRcode() | m.Rcode&0xF // miekg folds it in already; be explicit
		s.EDNS = fmt.Sprintf("version=%d udp=%d do=%t", opt.Version(), opt.UDPSize(), opt.Do())
		for _, o := range opt.Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok {
				h, _ := hex.DecodeString(n.Nsid)
				s.NSID = string(h)
			}
		}
	}
	s.Additional = rrStrings(extra)
	s.Rcode = rcodeName(rcode)
	return s
}
