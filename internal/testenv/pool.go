package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Sites describes a set of test sites that know each other, as the
// multi-site tests run them: each site on its own loopback address, its
// nameserver on DNSPort there (53 for real resolvers), its HAProxy
// frontend speaking TLS on HTTPSPort with a certificate of one test CA and
// publishing the site's public status, and, in pool mode, every other site
// as a peer probed every 200 ms.
type Sites struct {
	// Mode is dns.mode, "self" or "pool".
	Mode string
	// Addrs maps each site's name to its loopback address.
	Addrs map[string]string
	// DNSPort and HTTPSPort are the same at every site.
	DNSPort, HTTPSPort int
	// TTL and Grace are dns.ttl and dns.shutdown_grace ("" for the
	// defaults).
	TTL, Grace string
	// CAFile and CertFile are the test CA and the sites' certificate
	// (NewSites writes them).
	CAFile, CertFile string
}

// NewSites returns Sites for addrs (name -> loopback address) in mode, with
// a fresh test CA whose certificate names api.domain.tld, and free ports
// (dnsPort 0: a free one).
func NewSites(t testing.TB, mode string, addrs map[string]string, dnsPort int) *Sites {
	t.Helper()
	if dnsPort == 0 {
		dnsPort = FreePort(t)
	}
	ss := &Sites{Mode: mode, Addrs: addrs, DNSPort: dnsPort, HTTPSPort: FreePort(t)}
	ca := NewTestCA(t, []string{"api.domain.tld"})
	dir := TempDir(t)
	ss.CAFile, ss.CertFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "site.pem")
	for _, f := range []string{ss.CAFile, ss.CertFile} {
		if err := os.WriteFile(f, ca.PEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ss
}

// Opts returns the SiteOpts of site name: its own address in
// [dns.records.api], every site's nameserver in dns.nameservers (sorted by
// name), metrics on a free loopback port that the frontend publishes at
// /.well-known/spdu/status, and in pool mode the other sites as
// [[peers]].
func (ss *Sites) Opts(t testing.TB, name string) SiteOpts {
	t.Helper()
	ip := ss.Addrs[name]
	names := make([]string, 0, len(ss.Addrs))
	for n := range ss.Addrs {
		names = append(names, n)
	}
	slices.Sort(names)
	var nameservers []string
	for _, n := range names {
		nameservers = append(nameservers, n+".domain.tld.")
	}
	metrics := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	c := DaemonConfig{Site: name, Mode: ss.Mode, Metrics: metrics, API: []string{ip}, TTL: ss.TTL, Grace: ss.Grace,
		DNSListen: []string{fmt.Sprintf("%s:%d", ip, ss.DNSPort)}, Nameservers: nameservers, DNS: `ttl_unstable = "1s"`}
	if ss.Mode == "pool" {
		for _, n := range names {
			if n == name {
				continue
			}
			base := fmt.Sprintf("https://%s:%d", ss.Addrs[n], ss.HTTPSPort)
			c.Extra += fmt.Sprintf("[[peers]]\nname = %q\na = [%q]\nprobe = \"%s/status\"\nhost = \"api.domain.tld\"\n"+
				"status_url = \"%s/.well-known/spdu/status\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nca_file = %q\n",
				n, ss.Addrs[n], base, base, ss.CAFile)
		}
	}
	return SiteOpts{IP: ip, Daemon: c, HAProxy: SiteHAProxy{
		Frontend: fmt.Sprintf("%s:%d", ip, ss.HTTPSPort), TLSCert: ss.CertFile, Status: metrics}}
}
