package dnsserve

import "reflect"

// liveOptions are the server options that SetOptions may replace while
// serving. A value is never modified once stored.
type liveOptions struct {
	opts       options
	cookieFile string        // Config.CookieSecretFile the cookies came from
	cookies    *cookieSigner // RFC 9018 server cookies
	rrl        *limiter      // nil when rate limiting is off
}

// SetOptions replaces, on a configuration reload, the server options that
// can change while serving: Identity and HideIdentity (NSID, RFC 5001, and
// CHAOS TXT), RRL, CookieSecretFile (read again, so a reload rotates the
// secret; while it stays empty the running random secret is kept, so
// clients' cookies stay valid), UDPReadBuffer (applied to every bound UDP
// socket at once), and TCPMaxConns, TCPIdleTimeout and TCPQueryTimeout (for
// reads started and connections accepted after the call). UDPSockets is
// bound by Listen and kept. The rate limiting counters carry on (RRLStats
// only grows); the token buckets are kept when RRL is unchanged and start
// afresh when it changes. The zone's data is SetZone's. Errors name the
// Config field and change nothing.
func (s *Server) SetOptions(cfg Config) error {
	opts, err := resolveOptions(cfg)
	if err != nil {
		return err
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	old := s.live.Load()
	opts.udpSockets = old.opts.udpSockets
	next := &liveOptions{opts: opts, cookieFile: cfg.CookieSecretFile, cookies: old.cookies, rrl: old.rrl}
	if cfg.CookieSecretFile != "" || old.cookieFile != "" {
		next.cookies = newCookieSigner(opts.cookieSecret)
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
	return nil
}

// CheckConfig validates cfg as New would, including reading the cookie
// secret file, without building or changing any server: a reload checks
// the whole configuration before applying any of it. Errors name the Config
// field.
func CheckConfig(cfg Config) error {
	if _, err := buildZone(cfg); err != nil {
		return err
	}
	_, err := resolveOptions(cfg)
	return err
}
