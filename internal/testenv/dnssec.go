package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// Keygen runs `spdu-haproxy keygen -zone zone -algorithm alg -dir dir` with
// the built daemon and returns the key's absolute base path, after checking
// that it printed one base name K<zone>+... and wrote the .private file
// with mode 0600 and the .key file 0644 (the daemon's checks accept them
// as they are).
func Keygen(t testing.TB, dir, zone, alg string) string {
	t.Helper()
	code, out := RunBinary(t, "keygen", "-zone", zone, "-algorithm", alg, "-dir", dir)
	base := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(base, "K"+zone+"+") || strings.Contains(base, "\n") {
		t.Fatalf("keygen -zone %s -algorithm %s: exit %d, want one base name K%s+...:\n%s", zone, alg, code, zone, out)
	}
	path := filepath.Join(dir, base)
	for ext, want := range map[string]os.FileMode{".key": 0o644, ".private": 0o600} {
		fi, err := os.Stat(path + ext)
		if err != nil {
			t.Fatalf("keygen printed %s but: %v", base, err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("keygen wrote %s%s with mode %04o, want %04o", base, ext, fi.Mode().Perm(), want)
		}
	}
	return path
}

// ReadDNSKEY returns the DNSKEY record of the key file base+".key".
func ReadDNSKEY(t testing.TB, base string) *dns.DNSKEY {
	t.Helper()
	b, err := os.ReadFile(base + ".key")
	if err != nil {
		t.Fatal(err)
	}
	zp := dns.NewZoneParser(strings.NewReader(string(b)), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if k, ok := rr.(*dns.DNSKEY); ok {
			return k
		}
	}
	t.Fatalf("%s.key holds no DNSKEY (%v)", base, zp.Err())
	return nil
}

// DS runs `spdu-haproxy ds -config cfgPath` with the built daemon and
// returns the DS records it prints, in order. It fails the test unless the
// command exits 0 and prints at least one DS record, and on any line that
// is neither a DS record nor a comment or blank (see ParseDS).
func DS(t testing.TB, cfgPath string) []*dns.DS {
	t.Helper()
	code, out := RunBinary(t, "ds", "-config", cfgPath)
	if code != 0 {
		t.Fatalf("ds -config %s: exit %d:\n%s", cfgPath, code, out)
	}
	return ParseDS(t, out)
}

// ParseDS returns the DS records of text, one a line, as `spdu-haproxy
// ds` and BIND's dnssec-dsfromkey print them. Blank lines and comment
// lines (";") are skipped; any other line that is not one DS record fails
// the test, as does text without a DS record.
func ParseDS(t testing.TB, text string) []*dns.DS {
	t.Helper()
	var out []*dns.DS
	for _, line := range strings.Split(text, "\n") {
		if l := strings.TrimSpace(line); l == "" || strings.HasPrefix(l, ";") {
			continue
		}
		rr, err := dns.NewRR(line)
		d, ok := rr.(*dns.DS)
		if err != nil || !ok {
			t.Fatalf("not a DS record (%v): %q\nin:\n%s", err, line, text)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		t.Fatalf("no DS record in:\n%s", text)
	}
	return out
}

// DNSSECTable returns a [dnssec] table of the daemon's configuration: own
// keys and peer keys (base paths), and dnskey_ttl when not "".
func DNSSECTable(keys, peers []string, dnskeyTTL string) string {
	s := fmt.Sprintf("[dnssec]\nkeys = %s\n", quoteList(keys))
	if len(peers) > 0 {
		s += fmt.Sprintf("peer_keys = %s\n", quoteList(peers))
	}
	if dnskeyTTL != "" {
		s += fmt.Sprintf("dnskey_ttl = %q\n", dnskeyTTL)
	}
	return s
}
