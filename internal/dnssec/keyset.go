package dnssec

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// KeySet is the keys of one zone: this site's own keys, which all sign, and
// the peer sites' public keys, which are only published. It is immutable
// and safe for concurrent use.
type KeySet struct {
	zone string // lower-case FQDN
	own  []*Key
	peer []*Key
}

// NewKeySet returns the key set of zone with the own keys own (at least
// one, each with a Signer; several during a rollover, and all sign) and the
// peer keys peer (without a Signer). Every key must belong to zone, and no
// key may appear twice, as own or peer. Every peer key's algorithm must be
// the algorithm of an own key: a zone's RRsets must be signed with every
// algorithm of its DNSKEY RRset (RFC 4035 section 2.2, RFC 6840 section
// 5.11), so in the multi-signer model every site signs with the same
// algorithm. Errors name the key files.
func NewKeySet(zone string, own, peer []*Key) (*KeySet, error) {
	z, err := canonicalZone(zone)
	if err != nil {
		return nil, err
	}
	if len(own) == 0 {
		return nil, fmt.Errorf("zone %s: no own key to sign with", z)
	}
	seen := map[string]*Key{}
	algs := map[uint8]bool{}
	check := func(k *Key, wantOwn bool) error {
		if k == nil || k.DNSKEY == nil {
			return fmt.Errorf("zone %s: nil key", z)
		}
		if k.Own() != wantOwn {
			if wantOwn {
				return fmt.Errorf("%s: own key without a private key", k.File)
			}
			return fmt.Errorf("%s: peer key with a private key: peer keys are public only", k.File)
		}
		if dns.CanonicalName(k.DNSKEY.Hdr.Name) != z {
			return fmt.Errorf("%s: key belongs to %s, not to zone %s", k.File, k.DNSKEY.Hdr.Name, z)
		}
		id := fmt.Sprintf("%d %s", k.Algorithm, k.DNSKEY.PublicKey)
		if prev, dup := seen[id]; dup {
			return fmt.Errorf("%s: same key as %s", k.File, prev.File)
		}
		seen[id] = k
		return nil
	}
	for _, k := range own {
		if err := check(k, true); err != nil {
			return nil, err
		}
		algs[k.Algorithm] = true
	}
	for _, k := range peer {
		if err := check(k, false); err != nil {
			return nil, err
		}
		if !algs[k.Algorithm] {
			return nil, fmt.Errorf("%s: peer key algorithm %s is not the algorithm of any own key (%s): every site must sign with the same algorithm", k.File, algorithmName(k.Algorithm), ownAlgorithms(own))
		}
	}
	return &KeySet{
		zone: z,
		own:  append([]*Key(nil), own...),
		peer: append([]*Key(nil), peer...),
	}, nil
}

// ownAlgorithms lists the algorithm names of keys, for an error message.
func ownAlgorithms(keys []*Key) string {
	var names []string
	seen := map[uint8]bool{}
	for _, k := range keys {
		if !seen[k.Algorithm] {
			seen[k.Algorithm] = true
			names = append(names, algorithmName(k.Algorithm))
		}
	}
	return strings.Join(names, ", ")
}

// Zone returns the zone apex, a lower-case FQDN.
func (s *KeySet) Zone() string { return s.zone }

// Own returns the own keys in the order given to NewKeySet. The slice is a
// copy; the keys are shared and must not be modified.
func (s *KeySet) Own() []*Key { return append([]*Key(nil), s.own...) }

// DNSKEYs returns the apex DNSKEY RRset (RFC 4034 section 2): one new
// record per own key, then per peer key, owner the zone, class IN and TTL
// ttl seconds. Sign it like any other RRset; the records are the caller's.
func (s *KeySet) DNSKEYs(ttl uint32) []dns.RR {
	rrs := make([]dns.RR, 0, len(s.own)+len(s.peer))
	for _, ks := range [][]*Key{s.own, s.peer} {
		for _, k := range ks {
			c := *k.DNSKEY
			c.Hdr = dns.RR_Header{Name: s.zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: ttl}
			rrs = append(rrs, &c)
		}
	}
	return rrs
}
