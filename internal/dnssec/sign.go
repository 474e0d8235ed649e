package dnssec

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/miekg/dns"
)

// Signature timing (issue 13).
const (
	// Backdate is how long before the signing time each RRSIG's inception
	// is set, so that validators whose clocks are a little behind accept it.
	Backdate = time.Hour
	// DefaultValidity is the default time from signing to expiration
	// (the signature_validity setting).
	DefaultValidity = 14 * 24 * time.Hour
	// DefaultRefresh is the default remaining validity under which
	// signatures are made anew (the refresh setting).
	DefaultRefresh = 7 * 24 * time.Hour
	// ExpiryMargin is how long before its signatures expire a signer that
	// could not refresh them stops serving them (a validator calls an
	// expired signature bogus); a failed refresh is retried until then.
	ExpiryMargin = time.Hour
	// maxValidity keeps the expiration within the RFC 1982 serial number
	// window of 2^31 seconds from the inception (RFC 4034 section 3.1.5).
	maxValidity = (math.MaxInt32 - 1) * time.Second
)

// CheckTiming checks a signature validity and refresh pair: 0 < refresh,
// refresh + ExpiryMargin <= validity (a failed refresh has that long to
// succeed), and validity + Backdate below 2^31 seconds (about 68 years,
// RFC 4034 section 3.1.5). Otherwise signatures would be refreshed at every
// check, withdrawn as soon as refreshing failed, or their times would be
// ambiguous. The error names the values.
func CheckTiming(validity, refresh time.Duration) error {
	switch {
	case refresh <= 0:
		return fmt.Errorf("refresh %s must be above zero", refresh)
	case validity <= refresh:
		return fmt.Errorf("signature validity %s must be longer than refresh %s", validity, refresh)
	case validity < refresh+ExpiryMargin:
		return fmt.Errorf("signature validity %s leaves less than %s between a refresh (%s) and expiry", validity, ExpiryMargin, refresh)
	case validity+Backdate > maxValidity:
		return fmt.Errorf("signature validity %s is too long: at most %s", validity, maxValidity-Backdate)
	}
	return nil
}

// Sign signs rrset with every own key of s and returns one RRSIG per own key,
// in the order of s.Own() (RFC 4034 section 3, RFC 4035 section 2.2):
//
//   - owner, class and TTL: the RRset's; Type Covered: its type;
//   - Original TTL: the RRset's TTL, so the record may be served with any
//     TTL up to it;
//   - Labels: the owner's label count less the root and a leading "*"
//     (RFC 4034 section 3.1.3);
//   - Inception: now - Backdate; Expiration: now + validity, in seconds
//     since the epoch modulo 2^32 (RFC 4034 section 3.1.5);
//   - Signer's Name: the zone apex; Key Tag and Algorithm: the key's.
//
// The signature covers the RRset in canonical form and order (RFC 4034
// sections 6.2 and 6.3: names lower-cased, TTL set to the Original TTL, RRs
// sorted by RDATA, duplicates once), which miekg/dns's RRSIG.Sign builds, so
// one RRSIG serves every order in which the RRset is served.
//
// Errors: an empty or mixed RRset (owner, type or class), RRs of different
// TTLs (RFC 2181 section 5.2), an owner outside the zone, an RRSIG RRset, a
// first label that starts with "*" without being "*", a validity outside
// CheckTiming's bounds, or a signing failure; no signature is returned then.
func (s *KeySet) Sign(rrset []dns.RR, now time.Time, validity time.Duration) ([]*dns.RRSIG, error) {
	if validity <= 0 || validity+Backdate > maxValidity {
		return nil, fmt.Errorf("sign: signature validity %s out of range", validity)
	}
	if err := s.checkRRset(rrset); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	h := rrset[0].Header()
	labels, err := rrsigLabels(h.Name)
	if err != nil {
		return nil, fmt.Errorf("sign %s %s: %w", h.Name, dns.TypeToString[h.Rrtype], err)
	}
	inception := uint32(now.Add(-Backdate).Unix())
	expiration := uint32(now.Add(validity).Unix())
	sigs := make([]*dns.RRSIG, 0, len(s.own))
	for _, k := range s.own {
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: h.Class, Ttl: h.Ttl},
			Algorithm:  k.Algorithm,
			OrigTtl:    h.Ttl,
			Expiration: expiration,
			Inception:  inception,
			KeyTag:     k.Tag,
			SignerName: s.zone,
		}
		if err := sig.Sign(k.Signer, rrset); err != nil {
			return nil, fmt.Errorf("sign %s %s with %s: %w", h.Name, dns.TypeToString[h.Rrtype], k, err)
		}
		if int(sig.Labels) != labels {
			return nil, fmt.Errorf("sign %s %s: labels %d, want %d", h.Name, dns.TypeToString[h.Rrtype], sig.Labels, labels)
		}
		sig.Hdr.Ttl = h.Ttl // Sign leaves the TTL alone; RFC 4034 section 3
		sigs = append(sigs, sig)
	}
	return sigs, nil
}

// checkRRset checks that rrset is one signable RRset of s's zone.
func (s *KeySet) checkRRset(rrset []dns.RR) error {
	if len(rrset) == 0 {
		return errors.New("empty RRset")
	}
	if !dns.IsRRset(rrset) {
		return errors.New("records of different owners, types or classes")
	}
	h := rrset[0].Header()
	for _, rr := range rrset[1:] {
		if rr.Header().Ttl != h.Ttl {
			return fmt.Errorf("%s %s: records with different TTLs", h.Name, dns.TypeToString[h.Rrtype])
		}
	}
	if h.Rrtype == dns.TypeRRSIG {
		return fmt.Errorf("%s: RRSIG RRsets are not signed", h.Name)
	}
	if !dns.IsSubDomain(s.zone, dns.CanonicalName(h.Name)) {
		return fmt.Errorf("%s is not in zone %s", h.Name, s.zone)
	}
	return nil
}

// rrsigLabels returns the RRSIG Labels field for owner (RFC 4034 section
// 3.1.3): its labels less the root and a leading wildcard label. miekg/dns
// counts a leading "*" by prefix, so an owner like "*x.example." is refused
// rather than signed with a wrong count.
func rrsigLabels(owner string) (int, error) {
	n := dns.CountLabel(owner)
	labels := dns.SplitDomainName(owner)
	if len(labels) > 0 && labels[0] == "*" {
		return n - 1, nil
	}
	if len(owner) > 0 && owner[0] == '*' {
		return 0, errors.New("first label starts with '*' but is not the wildcard label")
	}
	return n, nil
}

// Verify checks sigs against rrset: for each own key of s there must be a
// signature by that key whose cryptography verifies (RFC 4035 section
// 5.3.3, with miekg/dns's RRSIG.Verify, which takes the Original TTL and
// canonical order, so the RRset may be in any order and any TTL) and that
// is in its validity period at now (RFC 4035 section 5.3.1): what a
// validator would check. The daemon never calls it (the server serves what
// Sign returns without validating it); it is exported for tests, which
// check signed RRsets with it: this package's sign tests and benchmark and
// internal/dnsserve's signing tests. The error names the key and the
// RRset; an RRset that Sign would refuse is an error too.
func (s *KeySet) Verify(rrset []dns.RR, sigs []*dns.RRSIG, now time.Time) error {
	if err := s.checkRRset(rrset); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	h := rrset[0].Header()
	for _, k := range s.own {
		var last error = errors.New("no signature")
		for _, sig := range sigs {
			if sig.KeyTag != k.Tag || sig.Algorithm != k.Algorithm || sig.TypeCovered != h.Rrtype {
				continue
			}
			if last = sig.Verify(k.DNSKEY, rrset); last != nil {
				continue
			}
			if !Valid([]*dns.RRSIG{sig}, now) {
				last = errors.New("signature not in its validity period")
				continue
			}
			break
		}
		if last != nil {
			return fmt.Errorf("verify %s %s with %s: %w", h.Name, dns.TypeToString[h.Rrtype], k, last)
		}
	}
	return nil
}
