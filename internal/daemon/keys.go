package daemon

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spdu/spdu-haproxy/internal/config"
	"github.com/spdu/spdu-haproxy/internal/dnssec"
)

// KeyReader returns how the daemon reads DNSSEC key files: each file is
// opened once and checked on its descriptor, as the configuration is
// (config.ReadSafe: owner, not writable by group or others, the same for
// every directory above), and a .private file must not be readable by
// group or others (dnssec.CheckPrivateMode). With allowInsecure only the
// private file's mode is checked. Errors name the file.
func KeyReader(allowInsecure bool) dnssec.ReadFunc {
	return func(path string, private bool) ([]byte, error) {
		if !allowInsecure {
			b, fi, err := config.ReadSafe(path)
			if err == nil && private {
				err = dnssec.CheckPrivateMode(path, fi)
			}
			if err != nil {
				return nil, err
			}
			return b, nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err == nil && private {
			err = dnssec.CheckPrivateMode(path, fi)
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(io.LimitReader(f, config.MaxSafeFileSize+1))
		if err == nil && len(b) > config.MaxSafeFileSize {
			err = fmt.Errorf("%s: more than the %d bytes a key file may have", path, config.MaxSafeFileSize)
		}
		return b, err
	}
}

// LoadKeySet reads the keys of [dnssec] with read: each own key's .key and
// .private files (dnssec.keys), each peer key's .key file
// (dnssec.peer_keys), and checks that they belong to dns.zone, use a
// supported algorithm and that every peer key's algorithm is one the site
// signs with. It returns nil when the zone is unsigned. Errors name the
// key and its file; the private material never appears in them.
func LoadKeySet(cfg *config.Config, read dnssec.ReadFunc) (*dnssec.KeySet, error) {
	if !cfg.DNSSEC.Enabled() {
		return nil, nil
	}
	var own, peer []*dnssec.Key
	for i, p := range cfg.DNSSEC.Keys {
		k, err := dnssec.LoadKeyPair(cfg.DNS.Zone, p, read)
		if err != nil {
			return nil, fmt.Errorf("dnssec.keys[%d]: %w", i, err)
		}
		own = append(own, k)
	}
	for i, p := range cfg.DNSSEC.PeerKeys {
		k, err := dnssec.LoadPublicKey(cfg.DNS.Zone, p, read)
		if err != nil {
			return nil, fmt.Errorf("dnssec.peer_keys[%d]: %w", i, err)
		}
		peer = append(peer, k)
	}
	ks, err := dnssec.NewKeySet(cfg.DNS.Zone, own, peer)
	if err != nil {
		return nil, fmt.Errorf("dnssec: %w", err)
	}
	return ks, nil
}

// DSRecords returns the DS records (SHA-256, RFC 4509) of every own and
// peer key of [dnssec], each in master-file format after a comment line
// naming its file, ready for the parent zone. Only the public .key files
// are read. Errors name the key.
func DSRecords(cfg *config.Config, read dnssec.ReadFunc) (string, error) {
	if !cfg.DNSSEC.Enabled() {
		return "", fmt.Errorf("dnssec.keys: none configured, the zone is not signed")
	}
	var b strings.Builder
	for i, list := range [][]string{cfg.DNSSEC.Keys, cfg.DNSSEC.PeerKeys} {
		key := [...]string{"dnssec.keys", "dnssec.peer_keys"}[i]
		for j, p := range list {
			k, err := dnssec.LoadPublicKey(cfg.DNS.Zone, p, read)
			if err != nil {
				return "", fmt.Errorf("%s[%d]: %w", key, j, err)
			}
			ds := k.DS()
			ds.Hdr.Ttl = uint32(cfg.DNSSEC.DNSKEYTTL.Seconds())
			fmt.Fprintf(&b, "; %s (%s)\n%s\n", k.File, key, ds)
		}
	}
	return b.String(), nil
}
