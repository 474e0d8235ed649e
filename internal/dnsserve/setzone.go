package dnsserve

import "fmt"

// SetZone replaces the zone's data on a configuration reload: the records,
// TTL, nameservers, hostmaster and withdraw rcode of cfg. The serving state
// is kept; the SOA serial moves on (RFC 1982) so secondaries and monitors
// see the change. Server options are SetOptions' and listeners SetListen's;
// the zone's apex must stay the same. Queries in flight finish on the snapshot
// they loaded; new ones see the new zone. Errors name the Config field and
// leave the running zone in place.
func (s *Server) SetZone(cfg Config) error {
	z, err := buildZone(cfg)
	if err != nil {
		return err
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	if z.origin != s.zone.origin {
		return fmt.Errorf("Zone: %s cannot change to %s without a restart", s.zone.origin, z.origin)
	}
	old := s.snap.Load()
	s.zone, s.cfg = z, cfg
	if s.pool != nil { // pool mode: the same sites over the new zone data
		s.storePoolLocked(*s.pool, true)
		return nil
	}
	s.snap.Store(newSnapshot(z, old.serving, nextSerial(old.serial, s.now().Unix())))
	return nil
}
