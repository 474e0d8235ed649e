package dnsserve

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"syscall"
)

// liveOptions are the server options that Apply may replace while
// serving. A value is never modified once stored.
type liveOptions struct {
	opts       options
	cookieFile string        // Config.CookieSecretFile the cookies came from
	cookies    *cookieSigner // RFC 9018 server cookies
	// prevCookies is the signer of the secret before the latest rotation,
	// nil if none: its cookies stay valid until they age out
	// (cookieMaxAge), so a rotation does not invalidate every client's
	// cookie at once (RFC 7873 section 7.1).
	prevCookies *cookieSigner
	rrl         *limiter // nil when rate limiting is off
}

// validCookie reports whether opt carries a server cookie of the current
// secret or of the one before (see cookieSigner.valid).
func (lv *liveOptions) validCookie(opt []byte, ip netip.Addr, now uint32) bool {
	return lv.cookies.valid(opt, ip, now) || (lv.prevCookies != nil && lv.prevCookies.valid(opt, ip, now))
}

// Plan is a prepared reload of the server, from Prepare: the new zone, the
// options read (the cookie secret file included) and the listeners already
// bound. Apply puts it in force; Discard abandons it.
type Plan struct {
	s          *Server
	zone       *zone
	opts       options
	cookieFile string
	// Listeners: the bindings in Config.Listen's order (kept and fresh),
	// the fresh ones, the ones no address keeps, and those of dropped that
	// Prepare had to close early (same port); nil when Listen is unchanged.
	listen               []string
	next, fresh, dropped []*binding
	early                []*binding
	moved                bool
	used                 bool
	// signer is the signer of new keys, already tried on the answers in
	// force (its cache holds what it signed); nil when the keys and the
	// validity stay, or the zone is unsigned.
	signer *signer
}

// Prepare checks cfg whole as New would (zone and options, reading the
// cookie secret file) and binds every address of cfg.Listen not bound
// yet, changing nothing that is served: a reload checks the whole
// configuration before applying any of it. The apex (Zone) and UDPSockets
// cannot change without a restart. One case cannot bind first: a new
// address that overlaps a dropped one on the same port (0.0.0.0:53
// narrowed to 192.0.2.10:53, or the reverse) is refused by the kernel
// while the old socket is open, so that old one is closed now (logged;
// queries in that gap of a few system calls go unanswered) and Discard
// binds it again. One Prepare at a time: the daemon serializes reloads.
// Errors name the Config field or the address.
func (s *Server) Prepare(cfg Config) (*Plan, error) {
	z, err := buildZone(cfg)
	if err != nil {
		return nil, err
	}
	s.setMu.Lock()
	origin := s.zone.origin
	s.setMu.Unlock()
	if z.origin != origin {
		return nil, fmt.Errorf("config Zone: %s cannot change to %s without a restart", origin, z.origin)
	}
	opts, err := resolveOptions(cfg)
	if err != nil {
		return nil, err
	}
	if len(cfg.Listen) == 0 {
		return nil, errors.New("config Listen: no address")
	}
	p := &Plan{s: s, zone: z, opts: opts, cookieFile: cfg.CookieSecretFile, listen: slices.Clone(cfg.Listen)}
	s.setMu.Lock()
	a, sameKeys := s.answers, z.sign.fingerprint() == s.zone.sign.fingerprint()
	s.setMu.Unlock()
	if z.sign != nil && !sameKeys {
		// Sign the answers in force once with the new keys, on a signer of
		// their own, so that keys that cannot sign fail the reload instead
		// of withdrawing the zone at Apply; Apply adopts the signer and its
		// signatures. Only signed: Apply packs the wire answers.
		if a.Refuse {
			a = Answers{}
		}
		p.signer = newSigner(z.sign, &s.dnssecStats.signed)
		if _, err := buildRecords(z, a, 1, p.signer, s.clock()); err != nil {
			return nil, fmt.Errorf("config DNSSEC: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errors.New("dnsserve: Prepare after shutdown began")
	}
	if slices.Equal(cfg.Listen, s.listen) {
		return p, nil
	}
	have := make(map[string][]*binding, len(s.bindings))
	for _, b := range s.bindings {
		have[b.addr] = append(have[b.addr], b)
	}
	// The bindings that no address of cfg.Listen keeps, which
	// bindAllTakingOver may close early.
	keep := make(map[string]int, len(cfg.Listen))
	for _, a := range cfg.Listen {
		keep[a]++
	}
	for _, b := range s.bindings {
		if keep[b.addr] > 0 {
			keep[b.addr]--
		} else {
			p.dropped = append(p.dropped, b)
		}
	}
	next, fresh, early, err := s.bindAllTakingOver(cfg.Listen, have, p.dropped)
	if err != nil {
		s.restore(early)
		return nil, err
	}
	p.next, p.fresh, p.early, p.moved = next, fresh, early, true
	return p, nil
}

// Discard abandons p: it closes the sockets Prepare bound and binds again
// those it closed early.
func (p *Plan) Discard() {
	if p == nil || p.used {
		return
	}
	p.used = true
	for _, b := range p.fresh {
		b.close()
	}
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.restore(p.early)
}

// Apply puts p in force; it cannot fail. The zone's data (records, TTL,
// nameservers, hostmaster, withdraw rcode) is swapped with the answers in
// force kept and the SOA serial moved on (RFC 1982), so monitors see the
// change; queries in flight finish on the snapshot they loaded. The
// options change at once: Identity and HideIdentity (NSID, RFC 5001, and
// CHAOS TXT), RRL, the cookie secret (as read by Prepare, so a reload
// rotates it; while the file stays unset the running random secret is
// kept, so clients' cookies stay valid; after a rotation the previous
// secret's cookies are accepted until they age out), UDPReadBuffer
// (applied to every bound UDP socket at once), and TCPMaxConns,
// TCPIdleTimeout and TCPQueryTimeout (for reads started and connections
// accepted after the call). The rate limiting counters carry on (RRLStats
// only grows); the token buckets are kept when RRL is unchanged and start
// afresh when it changes. Then the fresh listeners start answering and
// only after that the dropped ones are closed, so the zone never goes
// unanswered on an address that stays; TCP connections accepted on a
// closed address finish as usual.
func (s *Server) Apply(p *Plan) {
	if p.used {
		return
	}
	p.used = true
	s.setMu.Lock()
	if p.zone.sign.fingerprint() != s.zone.sign.fingerprint() {
		s.signer = p.signer // nil for an unsigned zone
		if s.signer == nil {
			// Prepare saw these keys in force and tried none; reloads are
			// one at a time, so this is only a safety net.
			s.signer = newSigner(p.zone.sign, &s.dnssecStats.signed)
		}
	} else if s.signer != nil {
		s.signer.zs = p.zone.sign // same keys and validity: the cache stays good
	}
	s.zone = p.zone
	s.publishLocked(s.answers, true, false) //nolint:errcheck // a signing failure withdraws and is logged; Apply cannot fail
	s.applyOptionsLocked(p)
	s.setMu.Unlock()
	if p.moved {
		s.moveListeners(p)
	}
}

// applyOptionsLocked swaps in p's options; s.setMu is held.
func (s *Server) applyOptionsLocked(p *Plan) {
	opts := p.opts
	old := s.live.Load()
	opts.udpSockets = old.opts.udpSockets
	next := &liveOptions{opts: opts, cookieFile: p.cookieFile, cookies: old.cookies, prevCookies: old.prevCookies, rrl: old.rrl}
	if p.cookieFile != "" || old.cookieFile != "" {
		if c := newCookieSigner(opts.cookieSecret); *c != *old.cookies {
			next.cookies, next.prevCookies = c, old.cookies
		}
	} else {
		next.opts.cookieSecret = old.opts.cookieSecret // the secret of the signer kept
	}
	if !reflect.DeepEqual(opts.rrl, old.opts.rrl) {
		if old.rrl != nil {
			s.rrlBase = s.rrlBase.add(old.rrl.stats())
		}
		next.rrl = newLimiter(opts.rrl, s.clock())
	}
	s.conns.setMax(opts.tcpMaxConns)
	s.live.Store(next)
	if opts.udpReadBuffer != old.opts.udpReadBuffer {
		s.mu.Lock()
		for _, b := range s.bindings {
			for _, c := range b.udp {
				s.setReadBuffer(c)
			}
		}
		s.mu.Unlock()
	}
}

// moveListeners serves p's fresh bindings and closes its dropped ones.
func (s *Server) moveListeners(p *Plan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		// Run is shutting down and closes what it knows; close the rest.
		for _, b := range p.fresh {
			b.close()
		}
		return
	}
	if s.running {
		for _, b := range p.fresh {
			s.serve(b)
		}
	}
	for _, b := range p.dropped {
		b.close() // a second close of an early one is harmless
		s.log.Info().Str("addr", b.addr).Stringer("udp", b.udp[0].LocalAddr()).Msg("dns listener closed")
	}
	s.bindings, s.listen = p.next, p.listen
}

// bindAllTakingOver returns a binding for every address of addrs, reusing
// those of have (by address string, each at most once: "127.0.0.1:0" twice
// is two ports) and binding the others, which it also returns as fresh.
// When an address cannot be bound because a binding of dropped holds its
// port, it closes that one first and tries again; it returns the bindings
// so closed early, which the caller must restore if it fails. On error it
// closes the fresh ones and names the address.
func (s *Server) bindAllTakingOver(addrs []string, have map[string][]*binding, dropped []*binding) (all, fresh, early []*binding, err error) {
	for _, addr := range addrs {
		if bs := have[addr]; len(bs) > 0 {
			all, have[addr] = append(all, bs[0]), bs[1:]
			continue
		}
		b, berr := s.bind(addr)
		if berr != nil && errors.Is(berr, syscall.EADDRINUSE) {
			if old := samePort(dropped, addr, early); old != nil {
				s.log.Warn().Str("old", old.addr).Str("new", addr).
					Msg("dns listener: the new address overlaps the old one on the same port; closing the old one first")
				old.closeAndWait()
				early = append(early, old)
				b, berr = s.bind(addr)
			}
		}
		if berr != nil {
			err = fmt.Errorf("listen %s: %w", addr, berr)
			break
		}
		all, fresh = append(all, b), append(fresh, b)
	}
	if err != nil {
		for _, b := range fresh {
			b.close()
		}
		return nil, nil, early, err
	}
	return all, fresh, early, nil
}

// samePort returns the first binding of dropped, not yet in closed, whose
// port is addr's (never for port 0), or nil.
func samePort(dropped []*binding, addr string, closed []*binding) *binding {
	_, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port == 0 {
		return nil
	}
	for _, b := range dropped {
		if b.udp[0].LocalAddr().(*net.UDPAddr).Port == port && !slices.Contains(closed, b) {
			return b
		}
	}
	return nil
}

// restore binds again the addresses of bindings that Prepare closed early
// (bindAllTakingOver) when that Prepare fails or its Plan is discarded,
// serving them if Run runs, and puts the new sockets in their place in
// s.bindings; s.mu is held. An address that cannot be bound again is
// logged and dropped from s.bindings: it stays unserved until a reload
// that changes Listen binds it anew (Prepare binds nothing while Listen is
// unchanged).
func (s *Server) restore(early []*binding) {
	for _, old := range early {
		// The host as configured (":53" is both families, while its
		// socket's address reads "[::]:53"), on the ports it had, not new
		// ones for a "host:0" address.
		host, _, _ := net.SplitHostPort(old.addr)
		at := func(a net.Addr) string {
			_, port, _ := net.SplitHostPort(a.String())
			return net.JoinHostPort(host, port)
		}
		b, err := s.bindTCPAt(at(old.udp[0].LocalAddr()), at(old.tcp.Addr()))
		if err != nil {
			s.log.Error().Err(err).Str("addr", old.addr).Msg("dns listener: cannot bind the old address again after a failed move")
			s.bindings = slices.DeleteFunc(s.bindings, func(x *binding) bool { return x == old })
			continue
		}
		b.addr = old.addr
		if s.running {
			s.serve(b)
		}
		s.bindings[slices.Index(s.bindings, old)] = b
	}
}
