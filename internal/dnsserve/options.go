package dnsserve

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"
)

// Defaults of the optional Config fields.
const (
	defaultUDPReadBuffer   = 4 << 20 // bytes
	defaultTCPMaxConns     = 1000
	defaultTCPIdleTimeout  = 10 * time.Second
	defaultTCPQueryTimeout = 2 * time.Second
	maxIdentityLen         = 255 // one TXT character-string (RFC 1035 section 3.3)
)

// options are the optional Config fields with defaults applied.
type options struct {
	identity        string // "" when hidden
	rrl             RRL
	cookieSecret    [cookieSecretLen]byte
	udpSockets      int
	udpReadBuffer   int
	tcpMaxConns     int
	tcpIdleTimeout  time.Duration
	tcpQueryTimeout time.Duration
}

// resolveOptions checks the optional fields of cfg and applies defaults.
// Errors name the Config field.
func resolveOptions(cfg Config) (options, error) {
	o := options{
		identity:        cfg.Identity,
		rrl:             cfg.RRL,
		udpSockets:      cfg.UDPSockets,
		udpReadBuffer:   cfg.UDPReadBuffer,
		tcpMaxConns:     cfg.TCPMaxConns,
		tcpIdleTimeout:  cfg.TCPIdleTimeout,
		tcpQueryTimeout: cfg.TCPQueryTimeout,
	}
	if o.identity == "" && !cfg.HideIdentity {
		host, err := os.Hostname()
		if err != nil {
			return o, fmt.Errorf("config Identity: empty and no host name: %w", err)
		}
		o.identity = host
	}
	if len(o.identity) > maxIdentityLen {
		return o, fmt.Errorf("config Identity: %d bytes; at most %d", len(o.identity), maxIdentityLen)
	}
	for _, c := range []byte(o.identity) {
		if c < ' ' || c > '~' || c == '"' || c == '\\' {
			return o, fmt.Errorf("config Identity %q: only printable ASCII without quotes or backslashes", o.identity)
		}
	}
	if cfg.HideIdentity {
		o.identity = ""
	}
	if o.rrl.Rate == 0 {
		o.rrl.Rate = defaultRRLRate
	}
	if o.rrl.Slip == 0 {
		o.rrl.Slip = defaultRRLSlip
	}
	o.rrl.Whitelist = slices.Clone(o.rrl.Whitelist)
	for i, p := range o.rrl.Whitelist {
		if !p.IsValid() {
			return o, fmt.Errorf("config RRL.Whitelist[%d]: invalid prefix", i)
		}
		o.rrl.Whitelist[i] = p.Masked()
	}
	var err error
	read := cfg.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	if o.cookieSecret, err = loadCookieSecret(cfg.CookieSecretFile, read); err != nil {
		return o, err
	}
	if o.udpSockets < 0 || o.udpReadBuffer < 0 || o.tcpMaxConns < 0 || o.tcpIdleTimeout < 0 || o.tcpQueryTimeout < 0 {
		return o, fmt.Errorf("config UDPSockets, UDPReadBuffer, TCPMaxConns, TCPIdleTimeout and TCPQueryTimeout may not be negative")
	}
	if o.udpSockets == 0 {
		o.udpSockets = runtime.GOMAXPROCS(0)
	}
	if o.udpReadBuffer == 0 {
		o.udpReadBuffer = defaultUDPReadBuffer
	}
	if o.tcpMaxConns == 0 {
		o.tcpMaxConns = defaultTCPMaxConns
	}
	if o.tcpIdleTimeout == 0 {
		o.tcpIdleTimeout = defaultTCPIdleTimeout
	}
	if o.tcpQueryTimeout == 0 {
		o.tcpQueryTimeout = defaultTCPQueryTimeout
	}
	return o, nil
}
