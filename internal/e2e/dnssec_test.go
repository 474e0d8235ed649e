package e2e

// Issue 13's proofs against the built daemon: real validators (BIND's delv,
// dnssec-verify and dnssec-dsfromkey from bind9-dnsutils and bind9-utils,
// Knot's kzonecheck) judge what a running, signed site serves, with keys
// made by `spdu-haproxy keygen`. CI installs the tools; a missing one
// fails the test.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/status"
	"github.com/spdu/spdu-haproxy/internal/testenv"
)

// poolZone is the zone testenv's configurations serve.
const poolZone = "pool.domain.tld."

// runTool runs a validator with a 20 s bound and returns its combined
// output and error.
func runTool(t *testing.T, name, pkg string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testenv.RequireTool(t, name, pkg), args...).CombinedOutput()
	return string(out), err
}

// anchors is a delv trust-anchors file (BIND 9.18 syntax).
type anchors struct {
	keys []*dns.DNSKEY // static-key
	ds   []*dns.DS     // static-ds
}

// write writes the file into dir and returns its path.
func (a anchors) write(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("trust-anchors {\n")
	for _, k := range a.keys {
		fmt.Fprintf(&b, "  %q static-key %d %d %d %q;\n", k.Hdr.Name, k.Flags, k.Protocol, k.Algorithm, k.PublicKey)
	}
	for _, d := range a.ds {
		fmt.Fprintf(&b, "  %q static-ds %d %d %d %q;\n", d.Hdr.Name, d.KeyTag, d.Algorithm, d.DigestType, d.Digest)
	}
	b.WriteString("};\n")
	f, err := os.CreateTemp(dir, "anchors-*.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// delvResult is what delv said about one question.
type delvResult struct {
	out     string   // the whole output
	comment string   // its first comment line: "; fully validated", ...
	rrs     []dns.RR // the records it printed (RRSIGs included)
}

// delv asks the server at addr (straight, no recursion) for name and qtype
// with the trust anchors in anchorsFile, the pool zone as the root of
// validation (+root: delv then asks nothing above it).
func delv(t *testing.T, addr, anchorsFile, name, qtype string) delvResult {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, _ := runTool(t, "delv", "bind9-dnsutils", "@"+host, "-p", port, "-a", anchorsFile, "+root="+poolZone, name, qtype)
	r := delvResult{out: out}
	failed := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ";;"):
			// delv's own messages: ";; resolution failed: ncache
			// nxdomain" comes before the proof of a negative answer.
			if failed == "" {
				failed = strings.TrimSpace(line)
			}
		case strings.HasPrefix(line, "; "):
			if r.comment == "" {
				r.comment = strings.TrimSpace(line)
			}
		case strings.TrimSpace(line) != "":
			if rr, err := dns.NewRR(line); err == nil && rr != nil {
				r.rrs = append(r.rrs, rr)
			}
		}
	}
	if r.comment == "" {
		r.comment = failed
	}
	return r
}

// of returns the records of type rrtype, in presentation form without owner
// and TTL, sorted.
func (r delvResult) of(rrtype uint16) []string {
	var out []string
	for _, rr := range r.rrs {
		if rr.Header().Rrtype == rrtype {
			out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
		}
	}
	slices.Sort(out)
	return out
}

// ttls describes the TTL of the rrtype records and the Original TTL of
// their RRSIGs: "1 (RRSIG Original TTL 3)".
func (r delvResult) ttls(rrtype uint16) string {
	ttl, orig := -1, -1
	for _, rr := range r.rrs {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == rrtype {
			orig = int(s.OrigTtl)
		} else if rr.Header().Rrtype == rrtype {
			ttl = int(rr.Header().Ttl)
		}
	}
	return fmt.Sprintf("%d (RRSIG Original TTL %d)", ttl, orig)
}

// sigTags returns the key tags of the RRSIGs covering rrtype.
func (r delvResult) sigTags(rrtype uint16) []uint16 {
	var out []uint16
	for _, rr := range r.rrs {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == rrtype {
			out = append(out, s.KeyTag)
		}
	}
	slices.Sort(out)
	return out
}

const (
	validated         = "; fully validated"
	negativeValidated = "; negative response, fully validated"
)

// signedSite is a site of the delv matrix: its HAProxy and backends run for
// the whole mode; its daemon runs for one key configuration.
type signedSite struct {
	*site
	v6    string // its IPv6 address in [dns.records.api] (never used for traffic)
	extra string // the configuration's Extra without [dnssec] ([[peers]])
	web   string // metrics listener, "http://..."
}

// v6Of returns a made-up IPv6 address for a site's loopback IPv4 address
// (127.0.0.N -> fd00::N): AAAA answers need one at every site.
func v6Of(ip string) string { return "fd00::" + ip[strings.LastIndex(ip, ".")+1:] }

// startSignedSites starts HAProxy and backends of every site in ss (no
// daemon yet), each with an IPv6 address next to its IPv4 one, the peers'
// too in pool mode.
func startSignedSites(t *testing.T, ss *testenv.Sites, names []string) []*signedSite {
	t.Helper()
	var out []*signedSite
	for _, name := range names {
		o := ss.Opts(t, name)
		s := &signedSite{v6: v6Of(o.IP), web: "http://" + o.Daemon.Metrics}
		o.Daemon.API = append(o.Daemon.API, s.v6)
		for peer, ip := range ss.Addrs {
			if peer != name {
				o.Daemon.Extra = strings.Replace(o.Daemon.Extra, fmt.Sprintf("a = [%q]\n", ip), fmt.Sprintf("a = [%q]\naaaa = [%q]\n", ip, v6Of(ip)), 1)
			}
		}
		s.extra = o.Daemon.Extra
		s.site = startSite(t, o, true)
		out = append(out, s)
	}
	return out
}

// startWith writes the site's configuration with the [dnssec] table sec
// and starts its daemon, killed at t's cleanup (the end of a key
// combination's subtest, before the next one starts its daemons).
func (s *signedSite) startWith(t *testing.T, sec string) {
	t.Helper()
	s.Config.Extra = s.extra + sec
	if err := os.WriteFile(s.CfgPath, []byte(s.Config.Text(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Daemon = startDaemon(t, s.CfgPath)
}

// addrs returns the sorted A and AAAA addresses site s hands out while
// every site of sites is healthy.
func (s *signedSite) addrs(mode string, sites []*signedSite) (a, aaaa []string) {
	for _, o := range sites {
		if mode == "pool" || o == s {
			a, aaaa = append(a, o.IP), append(aaaa, o.v6)
		}
	}
	slices.Sort(a)
	slices.Sort(aaaa)
	return a, aaaa
}

// TestDNSSECValidated is issue 13's first proof: delv, with the pool
// zone's keys as trust anchors, asks each site's nameserver straight and
// says "fully validated" for A, AAAA, SOA, NS and DNSKEY and "negative
// response, fully validated" for an NXDOMAIN and a NODATA; in self mode
// (two sites) and pool mode (three sites), with one key shared by every
// site and with a key per site (RFC 8901 model 2: each site signs with its
// own key and lists the others' public keys as peer_keys), with ECDSA
// P-256 and Ed25519 keys made by `spdu-haproxy keygen`.
//
// The trust anchor is the shared key's DNSKEY (static-key), and for
// per-site keys the DS records that `spdu-haproxy ds` prints (static-ds),
// as the parent would publish them. With every combination it also checks
// that `spdu-haproxy ds` agrees with dnssec-dsfromkey -2 on every key
// file, that `spdu-haproxy zone` of every running site passes
// dnssec-verify (and kzonecheck -d on for a shared key, the only case its
// key-role policy accepts), and that /status shows signatures in force.
//
// Each mode's HAProxy and backends run once; each key combination starts
// the daemons anew.
func TestDNSSECValidated(t *testing.T) {
	for _, mode := range []string{"self", "pool"} {
		t.Run(mode, func(t *testing.T) {
			addrs := map[string]string{"alpha": "127.0.0.2", "beta": "127.0.0.3"}
			names := []string{"alpha", "beta"}
			if mode == "pool" {
				addrs["gamma"] = "127.0.0.4"
				names = append(names, "gamma")
			}
			ss := testenv.NewSites(t, mode, addrs, 0)
			ss.TTL = fmt.Sprint(matrixTTL)
			sites := startSignedSites(t, ss, names)
			for _, alg := range []string{"ecdsap256sha256", "ed25519"} {
				for _, keying := range []string{"shared", "per-site"} {
					t.Run(alg+"/"+keying, func(t *testing.T) {
						start := time.Now()
						validatedMatrix(t, mode, sites, alg, keying == "shared")
						t.Logf("%s mode, %s, %s keys: %s", mode, alg, keying, time.Since(start).Round(time.Millisecond))
					})
				}
			}
		})
	}
}

// matrixTTL is dns.ttl in TestDNSSECValidated: in pool mode also how long
// an answer stays unstable (served at dns.ttl_unstable, 1 s) after a
// change.
const matrixTTL = 3 * time.Second

// validatedMatrix runs one combination of TestDNSSECValidated.
func validatedMatrix(t *testing.T, mode string, sites []*signedSite, alg string, shared bool) {
	dir := testenv.TempDir(t)
	var keys []string // each site's own key (all the same when shared)
	if shared {
		k := testenv.Keygen(t, dir, poolZone, alg)
		for range sites {
			keys = append(keys, k)
		}
	} else {
		for range sites {
			keys = append(keys, testenv.Keygen(t, dir, poolZone, alg))
		}
	}
	for i, s := range sites {
		var peers []string
		if !shared {
			peers = slices.Concat(keys[:i], keys[i+1:])
		}
		s.startWith(t, testenv.DNSSECTable(keys[i:i+1], peers, ""))
	}
	for _, s := range sites {
		wantA, _ := s.addrs(mode, sites)
		testenv.Eventually(t, 15*time.Second, s.Name+" serves every healthy site", func() bool {
			rc, got := answers(s.DNSAddr)
			return rc == dns.RcodeSuccess && slices.Equal(got, wantA)
		})
	}

	// In pool mode the answer changed when the peers came up: it is served
	// at dns.ttl_unstable for matrixTTL, and the zone is dumped now and
	// again once it is stable.
	for _, s := range sites {
		checkZone(t, s, dir, shared, "at start")
	}

	// The DS records a parent would publish, from `spdu-haproxy ds`, checked
	// against BIND's dnssec-dsfromkey.
	ds := testenv.DS(t, sites[0].CfgPath)
	checkDS(t, ds, slices.Compact(slices.Clone(keys)))
	a := anchors{ds: ds}
	if shared {
		a = anchors{keys: []*dns.DNSKEY{testenv.ReadDNSKEY(t, keys[0])}}
	}
	anchorsFile := a.write(t, dir)

	var wantKeys []string
	for _, k := range slices.Compact(slices.Clone(keys)) {
		d := testenv.ReadDNSKEY(t, k)
		wantKeys = append(wantKeys, strings.TrimPrefix(d.String(), d.Header().String()))
	}
	slices.Sort(wantKeys)
	for i, s := range sites {
		ownTag := testenv.ReadDNSKEY(t, keys[i]).KeyTag()
		wantA, wantAAAA := s.addrs(mode, sites)
		for _, q := range []struct {
			name, qtype, want string
			check             func(delvResult) string
		}{
			{"api." + poolZone, "A", validated, func(r delvResult) string {
				t.Logf("%s: delv: A %s at TTL %s", s.Name, r.comment, r.ttls(dns.TypeA))
				return diffAddrs(r.of(dns.TypeA), wantA)
			}},
			{"api." + poolZone, "AAAA", validated, func(r delvResult) string { return diffAddrs(r.of(dns.TypeAAAA), wantAAAA) }},
			{poolZone, "SOA", validated, func(r delvResult) string { return count(r.of(dns.TypeSOA), 1) }},
			{poolZone, "NS", validated, func(r delvResult) string { return count(r.of(dns.TypeNS), len(sites)) }},
			{poolZone, "DNSKEY", validated, func(r delvResult) string {
				if got := r.of(dns.TypeDNSKEY); !slices.Equal(got, wantKeys) {
					return fmt.Sprintf("DNSKEY RRset %q, want every site's key %q", got, wantKeys)
				}
				if tags := r.sigTags(dns.TypeDNSKEY); !slices.Equal(tags, []uint16{ownTag}) {
					return fmt.Sprintf("DNSKEY RRset signed by keys %v, want the site's own %d only", tags, ownTag)
				}
				return ""
			}},
			{"nope." + poolZone, "A", negativeValidated, func(r delvResult) string { return contains(r.out, "NXDOMAIN") }},
			{"api." + poolZone, "TXT", negativeValidated, func(r delvResult) string { return contains(r.out, "NXRRSET") }},
		} {
			r := delv(t, s.DNSAddr, anchorsFile, q.name, q.qtype)
			if r.comment != q.want {
				t.Errorf("%s: delv %s %s: %q, want %q:\n%s", s.Name, q.name, q.qtype, r.comment, q.want, r.out)
				continue
			}
			if msg := q.check(r); msg != "" {
				t.Errorf("%s: delv %s %s: %s:\n%s", s.Name, q.name, q.qtype, msg, r.out)
			}
		}
		checkSigningStatus(t, s.web)
	}
	if mode == "pool" {
		for _, s := range sites {
			testenv.Eventually(t, 2*matrixTTL, s.Name+"'s answer stable (served at dns.ttl)", func() bool {
				return answerTTL(s.DNSAddr) == int(matrixTTL/time.Second)
			})
			checkZone(t, s, dir, shared, "once stable")
		}
	}
}

func diffAddrs(got, want []string) string {
	var addrs []string
	for _, g := range got {
		f := strings.Fields(g)
		addrs = append(addrs, f[len(f)-1])
	}
	slices.Sort(addrs)
	if !slices.Equal(addrs, want) {
		return fmt.Sprintf("addresses %v, want %v", addrs, want)
	}
	return ""
}

func count(got []string, n int) string {
	if len(got) != n {
		return fmt.Sprintf("%d records, want %d", len(got), n)
	}
	return ""
}

func contains(out, s string) string {
	if !strings.Contains(out, s) {
		return "output lacks " + s
	}
	return ""
}

// dsID is a DS record without TTL: owner, key tag, algorithm, digest type
// and digest, as a parent compares them.
func dsID(d *dns.DS) string {
	return fmt.Sprintf("%s %d %d %d %s", dns.CanonicalName(d.Hdr.Name), d.KeyTag, d.Algorithm, d.DigestType, strings.ToUpper(d.Digest))
}

// checkDS checks that ds (what `spdu-haproxy ds` printed) is what BIND's
// dnssec-dsfromkey -2 makes of each key file, in the same order.
func checkDS(t *testing.T, ds []*dns.DS, keys []string) {
	t.Helper()
	var want []string
	for _, k := range keys {
		out, err := runTool(t, "dnssec-dsfromkey", "bind9-utils", "-2", k+".key")
		if err != nil {
			t.Fatalf("dnssec-dsfromkey -2 %s.key: %v\n%s", k, err, out)
		}
		for _, d := range testenv.ParseDS(t, out) {
			want = append(want, dsID(d))
		}
	}
	var got []string
	for _, d := range ds {
		got = append(got, dsID(d))
	}
	if !slices.Equal(got, want) {
		t.Errorf("spdu-haproxy ds:\n%s\ndnssec-dsfromkey -2:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// checkZone dumps what site s serves with `spdu-haproxy zone` and has
// dnssec-verify check it; with a shared key kzonecheck too. when says
// when in the test the dump is taken.
func checkZone(t *testing.T, s *signedSite, dir string, shared bool, when string) {
	t.Helper()
	code, text := testenv.RunBinary(t, "zone", "-config", s.CfgPath)
	if code != 0 || !strings.Contains(text, "\tRRSIG\t") || !strings.Contains(text, "serving") {
		t.Fatalf("%s: zone %s: exit %d, want a signed zone that is served:\n%s", s.Name, when, code, text)
	}
	f, err := os.CreateTemp(dir, s.Name+"-*.zone")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	ttls := addressTTLs(t, text)
	if out, err := runTool(t, "dnssec-verify", "bind9-utils", "-z", "-o", poolZone, f.Name()); err != nil || !strings.Contains(out, "Zone fully signed") {
		t.Errorf("%s: zone %s (%s): dnssec-verify -z: %v\n%s\nzone:\n%s", s.Name, when, ttls, err, out, text)
	}
	if shared {
		if out, err := runTool(t, "kzonecheck", "knot-dnssecutils", "-o", poolZone, "-d", "on", f.Name()); err != nil {
			t.Errorf("%s: zone %s (%s): kzonecheck -d on: %v\n%s\nzone:\n%s", s.Name, when, ttls, err, out, text)
		}
	}
}

// addressTTLs describes the TTL of the A RRset in a dumped zone and the
// Original TTL of its RRSIGs, for failure messages.
func addressTTLs(t *testing.T, text string) string {
	t.Helper()
	ttl, orig := -1, -1
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch r := rr.(type) {
		case *dns.A:
			ttl = int(r.Hdr.Ttl)
		case *dns.RRSIG:
			if r.TypeCovered == dns.TypeA {
				orig = int(r.OrigTtl)
			}
		}
	}
	return fmt.Sprintf("A RRset at TTL %d, its RRSIGs' Original TTL %d", ttl, orig)
}

// checkSigningStatus checks the /status document's dnssec object and the
// DNSSEC metrics: signing works and the signatures served last about the
// default 14 days.
func checkSigningStatus(t *testing.T, web string) {
	t.Helper()
	m := httpGet(t, web+"/metrics")
	for name, ok := range map[string]func(float64) bool{
		"spdu_dnssec_signature_expiry_timestamp_seconds": func(v float64) bool { return v > float64(time.Now().Add(13*24*time.Hour).Unix()) },
		"spdu_dnssec_signatures_total":                   func(v float64) bool { return v > 0 },
		"spdu_dnssec_sign_errors_total":                  func(v float64) bool { return v == 0 },
		"spdu_dnssec_failing":                            func(v float64) bool { return v == 0 },
	} {
		if v := metricValue(m, name); !ok(v) {
			t.Errorf("/metrics: %s %v", name, v)
		}
	}
	var st status.Document
	if err := json.Unmarshal([]byte(httpGet(t, web+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	d := st.DNSSEC
	if d == nil {
		t.Fatalf("/status has no dnssec object")
	}
	if left := time.Until(d.Expires); d.Failing || d.Errors != 0 || d.LastError != "" || d.Signatures == 0 || left < 13*24*time.Hour || left > 15*24*time.Hour {
		t.Errorf("/status dnssec = %+v (expires in %s); want signatures in force for about 14 days, no error", *d, left.Round(time.Hour))
	}
}

// TestDNSSECKeyErrors: a key the daemon cannot use is refused at start
// by `run` (which exits non-zero) and by `check`, with an error that names
// the file: a missing .private file, a directory where the .key file
// should be, a .private file that others may read (the error says how to
// fix it), and another zone's key.
func TestDNSSECKeyErrors(t *testing.T) {
	dir := testenv.TempDir(t)
	other := testenv.Keygen(t, dir, "other.domain.tld.", "ecdsap256sha256")
	for _, tc := range []struct {
		name string
		// spoil makes the error and returns the file it is about.
		spoil func(key string) string
		want  []string
	}{
		{"missing .private", func(k string) string { must(t, os.Remove(k+".private")); return k + ".private" },
			[]string{"dnssec.keys[0]", "no such file"}},
		{"directory as .key", func(k string) string {
			must(t, os.Remove(k+".key"))
			must(t, os.Mkdir(k+".key", 0o755))
			return k + ".key"
		}, []string{"dnssec.keys[0]", "not a regular file"}},
		{".private mode 0644", func(k string) string { must(t, os.Chmod(k+".private", 0o644)); return k + ".private" },
			[]string{"mode 0644", "chmod go-rwx"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testenv.Keygen(t, dir, poolZone, "ecdsap256sha256")
			file := tc.spoil(key)
			cfg := keyErrorConfig(t, testenv.DNSSECTable([]string{key}, nil, ""))
			wantStartError(t, cfg, append(tc.want, file))
		})
	}
	t.Run("peer key of another zone", func(t *testing.T) {
		key := testenv.Keygen(t, dir, poolZone, "ecdsap256sha256")
		cfg := keyErrorConfig(t, testenv.DNSSECTable([]string{key}, []string{other}, ""))
		wantStartError(t, cfg, []string{"dnssec.peer_keys[0]", other + ".key", "not to zone " + poolZone})
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// keyErrorConfig writes a daemon configuration with the [dnssec] table sec
// and free loopback ports; no HAProxy: the daemon must fail before it
// would poll one.
func keyErrorConfig(t *testing.T, sec string) string {
	t.Helper()
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }
	return testenv.DaemonConfig{Socket: "/nonexistent/admin.sock", DNSListen: []string{free()}, AgentListen: free(), Extra: sec}.Write(t)
}

// wantStartError runs `check` and `run` on cfg: both must exit non-zero
// within a bound and print every string of want.
func wantStartError(t *testing.T, cfg string, want []string) {
	t.Helper()
	code, out := testenv.RunBinary(t, "check", "-config", cfg)
	for _, w := range want {
		if code == 0 || !strings.Contains(out, w) {
			t.Errorf("check: exit %d; want non-zero and an error with %q:\n%s", code, w, out)
		}
	}
	d := startDaemon(t, cfg)
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("run did not exit within 10 s:\n%s", d.Output())
	}
	code, out = d.ExitCode(), d.Output()
	for _, w := range want {
		if code == 0 || !strings.Contains(out, w) {
			t.Errorf("run: exit %d; want non-zero and an error with %q:\n%s", code, w, out)
		}
	}
}

// TestDNSSECReloadBadKey: a reload (SIGHUP) with a key the daemon cannot
// use is refused as a whole and the site keeps serving answers that delv
// fully validates with the running key; the DNSKEY RRset stays the old
// one. A good reload then switches to a new key, which only the new trust
// anchor validates.
func TestDNSSECReloadBadKey(t *testing.T) {
	dir := testenv.TempDir(t)
	key := testenv.Keygen(t, dir, poolZone, "ecdsap256sha256")
	ss := testenv.NewSites(t, "self", map[string]string{"alpha": "127.0.0.2"}, 0)
	s := startSignedSites(t, ss, []string{"alpha"})[0]
	s.startWith(t, testenv.DNSSECTable([]string{key}, nil, ""))
	testenv.Eventually(t, 10*time.Second, "alpha serves", func() bool { return testenv.Rcode(s.DNSAddr) == dns.RcodeSuccess })
	oldAnchors := anchors{keys: []*dns.DNSKEY{testenv.ReadDNSKEY(t, key)}}.write(t, dir)
	oldTag := testenv.ReadDNSKEY(t, key).KeyTag()
	validates := func(stage, anchorsFile string, tag uint16) {
		t.Helper()
		for _, q := range [][3]string{{"api." + poolZone, "A", validated}, {poolZone, "DNSKEY", validated}, {"nope." + poolZone, "A", negativeValidated}} {
			r := delv(t, s.DNSAddr, anchorsFile, q[0], q[1])
			if r.comment != q[2] {
				t.Errorf("%s: delv %s %s: %q, want %q:\n%s", stage, q[0], q[1], r.comment, q[2], r.out)
			}
			if q[1] == "DNSKEY" && !slices.Equal(r.sigTags(dns.TypeDNSKEY), []uint16{tag}) {
				t.Errorf("%s: DNSKEY RRset signed by %v, want key %d only", stage, r.sigTags(dns.TypeDNSKEY), tag)
			}
		}
	}
	validates("before", oldAnchors, oldTag)

	otherZone := testenv.Keygen(t, dir, "other.domain.tld.", "ecdsap256sha256")
	worldReadable := testenv.Keygen(t, dir, poolZone, "ecdsap256sha256")
	must(t, os.Chmod(worldReadable+".private", 0o644))
	missing := filepath.Join(dir, "Kpool.domain.tld.+013+00001")
	for _, tc := range []struct {
		name, sec, file string
	}{
		{"peer key of another zone", testenv.DNSSECTable([]string{key}, []string{otherZone}, ""), otherZone + ".key"},
		{"missing own key", testenv.DNSSECTable([]string{key, missing}, nil, ""), missing + ".key"},
		{".private mode 0644", testenv.DNSSECTable([]string{worldReadable}, nil, ""), worldReadable + ".private"},
	} {
		s.Config.Extra = s.extra + tc.sec
		log := testenv.Reload(t, s.Daemon, s.CfgPath, s.Config.Text(t), "reload failed: keeping the running configuration")
		if !strings.Contains(log, tc.file) {
			t.Errorf("reload with %s: the log does not name %s:\n%s", tc.name, tc.file, log)
		}
		validates("after a reload with "+tc.name, oldAnchors, oldTag)
	}
	if st := getStatus(t, s.web); st.DNSSEC == nil || st.DNSSEC.Failing || st.DNSSEC.Errors != 0 {
		t.Errorf("/status dnssec after the refused reloads: %+v; want signing unharmed", st.DNSSEC)
	}

	next := testenv.Keygen(t, dir, poolZone, "ed25519")
	s.Config.Extra = s.extra + testenv.DNSSECTable([]string{next}, nil, "")
	testenv.Reload(t, s.Daemon, s.CfgPath, s.Config.Text(t), "configuration reloaded")
	validates("after a good reload", anchors{keys: []*dns.DNSKEY{testenv.ReadDNSKEY(t, next)}}.write(t, dir), testenv.ReadDNSKEY(t, next).KeyTag())
	if r := delv(t, s.DNSAddr, oldAnchors, "api."+poolZone, "A"); strings.Contains(r.comment, "validated") {
		t.Errorf("after the key changed, the old trust anchor still validates: %q", r.comment)
	}
}
