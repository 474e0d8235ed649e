package dnsserve

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// AddressSet is one ordering of the addresses a pool answer hands out.
type AddressSet struct {
	// A and AAAA are the addresses in answer order.
	A, AAAA []netip.Addr
}

// PoolAnswer is what the zone hands out for its service names in pool mode
// (the sites whose probes pass, ordered by spare capacity).
type PoolAnswer struct {
	// Refuse answers every in-zone query with Config.Withdraw, as a
	// withdrawn site does.
	Refuse bool
	// Variants are precomputed orderings of the same addresses; each query
	// picks one uniformly at random, so the shares of first addresses follow
	// the shares of variants that start with them.
	Variants []AddressSet
	// TTL is the TTL of the service records (A and AAAA of every owner in
	// Config.Records) for this answer, whole seconds; 0 means Config.TTL.
	// SOA and NS keep Config.TTL.
	TTL time.Duration
}

// SetPool replaces the A and AAAA RRsets of every owner in Config.Records
// with the addresses of a (pool mode; self mode uses SetServing only). Each
// variant's answers are precomputed, so queries stay allocation-free. An
// owner without addresses of a type in a variant answers NODATA for it. The
// SOA serial moves on when the set of addresses or the serving state
// changes, not when only their order does. Safe from any goroutine.
func (s *Server) SetPool(a PoolAnswer) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.storePoolLocked(a, false)
}

// storePoolLocked publishes a; s.setMu must be held. force bumps the serial
// (the zone itself changed).
func (s *Server) storePoolLocked(a PoolAnswer, force bool) {
	old := s.snap.Load()
	serving := !a.Refuse && len(a.Variants) > 0
	key := poolKey(a)
	serial := old.serial
	if force || s.pool == nil || serving != old.serving || key != s.poolKey {
		serial = nextSerial(old.serial, s.now().Unix())
	}
	s.pool, s.poolKey = &a, key
	if !serving {
		s.snap.Store(newSnapshot(s.zone, false, serial))
		return
	}
	alts := make([]*snapshot, 0, len(a.Variants))
	for _, v := range a.Variants {
		z, err := buildZone(variantConfig(s.cfg, v, a.TTL))
		if err != nil {
			// Addresses from the pool policy always pack; keep serving the
			// previous answer rather than a broken one.
			s.log.Error().Err(err).Msg("pool answer rejected")
			return
		}
		alts = append(alts, newSnapshot(z, true, serial))
	}
	head := alts[0]
	head.alts = alts
	s.snap.Store(head)
}

// variantConfig is cfg with every record owner's addresses replaced by v,
// and the zone TTL kept for SOA and NS while the records get ttl.
func variantConfig(cfg Config, v AddressSet, ttl time.Duration) Config {
	recs := make(map[string]Records, len(cfg.Records))
	for owner := range cfg.Records {
		recs[owner] = Records{A: v.A, AAAA: v.AAAA}
	}
	cfg.Records = recs
	cfg.recordTTL = ttl
	return cfg
}

// poolKey identifies a pool answer's address set regardless of order.
func poolKey(a PoolAnswer) string {
	if a.Refuse || len(a.Variants) == 0 {
		return "refuse"
	}
	var all []string
	for _, x := range a.Variants[0].A {
		all = append(all, x.String())
	}
	for _, x := range a.Variants[0].AAAA {
		all = append(all, x.String())
	}
	slices.Sort(all)
	return fmt.Sprintf("%s|%s", strings.Join(all, ","), a.TTL)
}
