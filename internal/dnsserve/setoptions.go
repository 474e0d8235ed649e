package dnsserve

import (
	"net/netip"
	"reflect"
)

// liveOptions are the server options that SetOptions may replace while
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

// Options are the server options of a Config, checked and read (the
// cookie secret file) by CheckConfig, ready for SetOptions.
type Options struct {
	opts       options
	cookieFile string
}

// CheckConfig validates cfg as New would, zone and options, reading the
// cookie secret file, without building or changing any server: a reload
// checks the whole configuration before applying any of it. It returns the
// options for SetOptions, so that nothing is read twice. Errors name the
// Config field.
func CheckConfig(cfg Config) (Options, error) {
	if _, err := buildZone(cfg); err != nil {
		return Options{}, err
	}
	opts, err := resolveOptions(cfg)
	if err != nil {
		return Options{}, err
	}
	return Options{opts: opts, cookieFile: cfg.CookieSecretFile}, nil
}

// SetOptions replaces, on a configuration reload, the server options that
// can change while serving, from CheckConfig: Identity and HideIdentity
// (NSID, RFC 5001, and CHAOS TXT), RRL, the cookie secret (CookieSecretFile
// as read by CheckConfig, so a reload rotates the secret; while the file
// stays unset the running random secret is kept, so clients' cookies stay
// valid; after a rotation the previous secret's cookies are accepted until
// they age out), UDPReadBuffer (applied to every bound UDP socket at once),
// and TCPMaxConns, TCPIdleTimeout and TCPQueryTimeout (for reads started and
// connections accepted after the call). UDPSockets is bound by Listen and
// kept. The rate limiting counters carry on (RRLStats only grows); the token
// buckets are kept when RRL is unchanged and start afresh when it changes.
// The zone's data is SetZone's.
func (s *Server) SetOptions(o Options) {
	opts := o.opts
	s.setMu.Lock()
	defer s.setMu.Unlock()
	old := s.live.Load()
	opts.udpSockets = old.opts.udpSockets
	next := &liveOptions{opts: opts, cookieFile: o.cookieFile, cookies: old.cookies, prevCookies: old.prevCookies, rrl: old.rrl}
	if o.cookieFile != "" || old.cookieFile != "" {
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
