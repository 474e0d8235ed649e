package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/spdu/spdu-haproxy/internal/dnssec"
)

// MinUp is "health.min_up": either an absolute number of usable servers
// (Count) or a percentage of the backend's non-backup servers (Percent,
// rounded up). Exactly one of the two is non-zero.
type MinUp struct {
	// Count is the absolute number of usable servers needed, or 0.
	Count int
	// Percent is the percentage (1 to 100) of servers needed, or 0.
	Percent int
}

// UnmarshalTOML accepts an integer (3) or a percentage string ("60%").
func (m *MinUp) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 1 || x > 100000 {
			return fmt.Errorf("%d is not a server count from 1 to 100000", x)
		}
		*m = MinUp{Count: int(x)}
		return nil
	case string:
		num, ok := strings.CutSuffix(strings.TrimSpace(x), "%")
		if !ok {
			n, err := strconv.Atoi(num)
			if err != nil || n < 1 {
				return fmt.Errorf("%q is neither a server count nor a percentage such as \"60%%\"", x)
			}
			*m = MinUp{Count: n}
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("%q is not a percentage from 1%% to 100%%", x)
		}
		*m = MinUp{Percent: n}
		return nil
	default:
		return fmt.Errorf("want an integer or a percentage string, got %T", v)
	}
}

// MarshalTOML writes the count as an integer and a percentage as a string.
func (m MinUp) MarshalTOML() ([]byte, error) {
	if m.Percent > 0 {
		return []byte(strconv.Quote(m.String())), nil
	}
	return []byte(strconv.Itoa(m.Count)), nil
}

// String returns "3" or "60%".
func (m MinUp) String() string {
	if m.Percent > 0 {
		return strconv.Itoa(m.Percent) + "%"
	}
	return strconv.Itoa(m.Count)
}

var (
	siteRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	backendRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,100}$`)
)

// Validate checks every key and returns the first problem as an error of the
// form "KEY: reason". It expects Defaults to have run.
func (c *Config) Validate() error {
	if c.Site == "" {
		return fmt.Errorf("site: required")
	}
	if !siteRe.MatchString(c.Site) {
		return fmt.Errorf("site: %q must be 1-63 letters, digits, '.', '_' or '-'", c.Site)
	}
	if err := c.HAProxy.validate(); err != nil {
		return err
	}
	if err := c.Health.validate(); err != nil {
		return err
	}
	if err := c.DNS.validate(); err != nil {
		return err
	}
	if err := c.Agent.validate(); err != nil {
		return err
	}
	if c.Metrics.Listen != "off" {
		if err := hostPort("metrics.listen", c.Metrics.Listen); err != nil {
			return err
		}
	}
	if err := c.Notify.validate(); err != nil {
		return err
	}
	if err := c.Control.validate(); err != nil {
		return err
	}
	if err := c.Shed.validate(); err != nil {
		return err
	}
	if err := c.DNSSEC.validate(); err != nil {
		return err
	}
	return c.validatePeers()
}

func (c *Config) validatePeers() error {
	names := map[string]bool{c.Site: true}
	for i, p := range c.Peers {
		key := fmt.Sprintf("peers[%d]", i)
		if p.Name == "" {
			return fmt.Errorf("%s.name: required", key)
		}
		if !siteRe.MatchString(p.Name) {
			return fmt.Errorf("%s.name: %q must be 1-63 letters, digits, '.', '_' or '-'", key, p.Name)
		}
		if names[p.Name] {
			return fmt.Errorf("%s.name: %q is used twice (sites and peers need distinct names)", key, p.Name)
		}
		names[p.Name] = true
		key = "peers." + p.Name
		if len(p.A) == 0 && len(p.AAAA) == 0 {
			return fmt.Errorf("%s: needs at least one address in a or aaaa", key)
		}
		if err := addrs(key+".a", p.A, true); err != nil {
			return err
		}
		if err := addrs(key+".aaaa", p.AAAA, false); err != nil {
			return err
		}
		for _, k := range []struct{ name, v string }{{"probe", p.Probe}, {"status_url", p.StatusURL}} {
			if k.v == "" && k.name == "status_url" {
				continue
			}
			u, err := url.Parse(k.v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s.%s: %q is not an http or https URL", key, k.name, k.v)
			}
		}
		if err := within(key+".interval", p.Interval.Duration, 100*time.Millisecond, time.Minute); err != nil {
			return err
		}
		if p.Timeout.Duration <= 0 || p.Timeout.Duration >= p.Interval.Duration {
			return fmt.Errorf("%s.timeout: %s must be positive and shorter than %s.interval (%s)", key, p.Timeout.Duration, key, p.Interval.Duration)
		}
		if p.Rise < 1 || p.Rise > 100 {
			return fmt.Errorf("%s.rise: %d must be from 1 to 100", key, p.Rise)
		}
		if p.Fall < 1 || p.Fall > 100 {
			return fmt.Errorf("%s.fall: %d must be from 1 to 100", key, p.Fall)
		}
		if p.CAFile != "" && !filepath.IsAbs(p.CAFile) {
			return fmt.Errorf("%s.ca_file: %q must be an absolute path", key, p.CAFile)
		}
	}
	if c.DNS.Mode == ModeSelf && len(c.Peers) > 0 {
		return fmt.Errorf("peers: configured, but dns.mode is \"self\", which never hands out peers; set dns.mode = \"pool\" or remove them")
	}
	return nil
}

func (n *Notify) validate() error {
	if n.Exec != nil && (len(n.Exec) == 0 || n.Exec[0] == "") {
		return fmt.Errorf("notify.exec: needs a command, e.g. [\"/usr/local/bin/notify\", \"--site\"]")
	}
	if len(n.Exec) > 0 && !filepath.IsAbs(n.Exec[0]) {
		return fmt.Errorf("notify.exec: command %q must be an absolute path", n.Exec[0])
	}
	if n.Webhook != "" {
		u, err := url.Parse(n.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("notify.webhook: %q is not an http or https URL", n.Webhook)
		}
	}
	return within("notify.timeout", n.Timeout.Duration, 100*time.Millisecond, 5*time.Minute)
}

func (h *HAProxy) validate() error {
	if !filepath.IsAbs(h.Socket) {
		return fmt.Errorf("haproxy.socket: %q must be an absolute path", h.Socket)
	}
	if h.Backend == "" {
		return fmt.Errorf("haproxy.backend: required")
	}
	if !backendRe.MatchString(h.Backend) {
		return fmt.Errorf("haproxy.backend: %q is not a valid HAProxy proxy name", h.Backend)
	}
	if h.Frontend != "" && !backendRe.MatchString(h.Frontend) {
		return fmt.Errorf("haproxy.frontend: %q is not a valid HAProxy proxy name", h.Frontend)
	}
	if err := within("haproxy.poll_interval", h.PollInterval.Duration, 50*time.Millisecond, time.Minute); err != nil {
		return err
	}
	if h.PollTimeout.Duration <= 0 || h.PollTimeout.Duration >= h.PollInterval.Duration {
		return fmt.Errorf("haproxy.poll_timeout: %s must be positive and shorter than haproxy.poll_interval (%s)", h.PollTimeout.Duration, h.PollInterval.Duration)
	}
	if h.StaleAfter.Duration <= h.PollInterval.Duration {
		return fmt.Errorf("haproxy.stale_after: %s must be longer than haproxy.poll_interval (%s)", h.StaleAfter.Duration, h.PollInterval.Duration)
	}
	return nil
}

func (h *Health) validate() error {
	if h.MinUp.Count < 0 || h.MinUp.Percent < 0 || h.MinUp.Percent > 100 || (h.MinUp.Count == 0) == (h.MinUp.Percent == 0) {
		return fmt.Errorf("health.min_up: %s is not a server count or a percentage from 1%% to 100%%", h.MinUp)
	}
	if h.Rise < 1 || h.Rise > 100 {
		return fmt.Errorf("health.rise: %d must be from 1 to 100", h.Rise)
	}
	if h.Fall < 1 || h.Fall > 100 {
		return fmt.Errorf("health.fall: %d must be from 1 to 100", h.Fall)
	}
	return nil
}

func (d *DNS) validate() error {
	if len(d.Listen) == 0 {
		return fmt.Errorf("dns.listen: at least one address is required")
	}
	for _, a := range d.Listen {
		if err := hostPort("dns.listen", a); err != nil {
			return err
		}
	}
	if d.Zone == "" {
		return fmt.Errorf("dns.zone: required")
	}
	if err := domainName("dns.zone", d.Zone); err != nil {
		return err
	}
	if d.Zone == "." {
		return fmt.Errorf("dns.zone: the root zone cannot be a pool zone")
	}
	if d.TTL.Duration%time.Second != 0 {
		return fmt.Errorf("dns.ttl: %s must be a whole number of seconds", d.TTL.Duration)
	}
	if err := within("dns.ttl", d.TTL.Duration, time.Second, 24*time.Hour); err != nil {
		return err
	}
	if len(d.Nameservers) == 0 {
		return fmt.Errorf("dns.nameservers: at least one name server is required")
	}
	for _, ns := range d.Nameservers {
		if !dns.IsFqdn(ns) {
			return fmt.Errorf("dns.nameservers: %q must be fully qualified (end with a dot)", ns)
		}
		if err := domainName("dns.nameservers", ns); err != nil {
			return err
		}
	}
	if !dns.IsFqdn(d.Hostmaster) {
		return fmt.Errorf("dns.hostmaster: %q must be fully qualified (end with a dot)", d.Hostmaster)
	}
	if err := domainName("dns.hostmaster", d.Hostmaster); err != nil {
		return err
	}
	if err := within("dns.shutdown_grace", d.ShutdownGrace.Duration, 0, time.Minute); err != nil {
		return err
	}
	if err := d.validateServer(); err != nil {
		return err
	}
	switch d.Mode {
	case ModeSelf, ModePool:
	default:
		return fmt.Errorf("dns.mode: %q must be \"self\" or \"pool\"", d.Mode)
	}
	switch d.AllDown {
	case AllDownRefuse, AllDownAll:
	default:
		return fmt.Errorf("dns.all_down: %q must be \"refuse\" or \"all\"", d.AllDown)
	}
	if d.TTLUnstable.Duration%time.Second != 0 || d.TTLUnstable.Duration < time.Second || d.TTLUnstable.Duration > d.TTL.Duration {
		return fmt.Errorf("dns.ttl_unstable: %s must be whole seconds from 1s to dns.ttl (%s)", d.TTLUnstable.Duration, d.TTL.Duration)
	}
	if d.MaxAnswers < 0 || d.MaxAnswers > 64 {
		return fmt.Errorf("dns.max_answers: %d must be from 0 (all) to 64", d.MaxAnswers)
	}
	switch d.Withdraw {
	case WithdrawRefused, WithdrawServfail:
	default:
		return fmt.Errorf("dns.withdraw: %q must be \"refused\" or \"servfail\"", d.Withdraw)
	}
	if len(d.Records) == 0 {
		return fmt.Errorf("dns.records: at least one [dns.records.NAME] table is required")
	}
	owners := make([]string, 0, len(d.Records))
	for o := range d.Records {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	seen := map[string]string{}
	for _, o := range owners {
		key := "dns.records." + o
		if err := owner(key, o, d.Zone); err != nil {
			return err
		}
		if prev, dup := seen[strings.ToLower(o)]; dup {
			return fmt.Errorf("%s: same owner name as dns.records.%s", key, prev)
		}
		seen[strings.ToLower(o)] = o
		r := d.Records[o]
		if len(r.A) == 0 && len(r.AAAA) == 0 {
			return fmt.Errorf("%s: needs at least one address in a or aaaa", key)
		}
		if err := addrs(key+".a", r.A, true); err != nil {
			return err
		}
		if err := addrs(key+".aaaa", r.AAAA, false); err != nil {
			return err
		}
	}
	return nil
}

func (d *DNS) validateServer() error {
	if d.CookieSecretFile != "" && !filepath.IsAbs(d.CookieSecretFile) {
		return fmt.Errorf("dns.cookie_secret_file: %q must be an absolute path", d.CookieSecretFile)
	}
	if d.UDPSockets < 0 || d.UDPSockets > 64 {
		return fmt.Errorf("dns.udp_sockets: %d must be from 0 (one per CPU) to 64", d.UDPSockets)
	}
	if d.UDPReadBuffer != 0 && (d.UDPReadBuffer < 65536 || d.UDPReadBuffer > 256<<20) {
		return fmt.Errorf("dns.udp_read_buffer: %d must be from 65536 to 268435456 bytes", d.UDPReadBuffer)
	}
	if d.TCPMaxConnections < 0 || d.TCPMaxConnections > 100000 {
		return fmt.Errorf("dns.tcp_max_connections: %d must be from 1 to 100000", d.TCPMaxConnections)
	}
	if d.TCPIdleTimeout.Duration != 0 {
		if err := within("dns.tcp_idle_timeout", d.TCPIdleTimeout.Duration, 100*time.Millisecond, 10*time.Minute); err != nil {
			return err
		}
	}
	if d.TCPQueryTimeout.Duration != 0 {
		if err := within("dns.tcp_query_timeout", d.TCPQueryTimeout.Duration, 10*time.Millisecond, time.Minute); err != nil {
			return err
		}
	}
	if r := *d.RRL.Rate; r < 0 || r > 1000000 {
		return fmt.Errorf("dns.rrl.rate: %d must be from 0 (off) to 1000000 responses per second", r)
	}
	if sl := *d.RRL.Slip; sl < 0 || sl > 10 {
		return fmt.Errorf("dns.rrl.slip: %d must be from 0 (drop all) to 10", sl)
	}
	for _, w := range d.RRL.Whitelist {
		if _, err := netip.ParsePrefix(w); err != nil {
			return fmt.Errorf("dns.rrl.whitelist: %q is not a prefix such as \"192.0.2.0/24\"", w)
		}
	}
	return nil
}

// Owner returns the fully qualified, lower-case owner name of a
// "[dns.records.NAME]" key within the zone.
func (d *DNS) Owner(name string) string {
	if name == "@" {
		return d.Zone
	}
	return strings.ToLower(name) + "." + d.Zone
}

func (a *Agent) validate() error {
	if err := hostPort("agent.listen", a.Listen); err != nil {
		return err
	}
	if err := within("agent.read_timeout", a.ReadTimeout.Duration, 10*time.Millisecond, 10*time.Second); err != nil {
		return err
	}
	switch a.Mode {
	case AgentStatic, AgentAdaptive:
	default:
		return fmt.Errorf("agent.mode: %q must be \"static\" or \"adaptive\"", a.Mode)
	}
	if *a.MinWeight < 1 || *a.MinWeight > 100 {
		return fmt.Errorf("agent.min_weight: %d must be from 1 to 100 (0 would make HAProxy count the server unusable)", *a.MinWeight)
	}
	if a.MaxLowered < 1 || a.MaxLowered > 100 {
		return fmt.Errorf("agent.max_lowered: %d must be from 1 to 100 percent of the servers", a.MaxLowered)
	}
	if err := within("agent.half_life", a.HalfLife.Duration, 100*time.Millisecond, 10*time.Minute); err != nil {
		return err
	}
	if a.RecoveryRate < 1 || a.RecoveryRate > 100 {
		return fmt.Errorf("agent.recovery_rate: %d must be from 1 to 100 percent points per second", a.RecoveryRate)
	}
	return within("agent.latency_slack", a.LatencySlack.Duration, time.Millisecond, 10*time.Second)
}

func (c *Control) validate() error {
	if !filepath.IsAbs(c.Socket) || len(c.Socket) > 90 {
		return fmt.Errorf("control.socket: %q must be an absolute path of at most 90 bytes", c.Socket)
	}
	if !filepath.IsAbs(c.StateFile) {
		return fmt.Errorf("control.state_file: %q must be an absolute path", c.StateFile)
	}
	if filepath.Clean(c.StateFile) == filepath.Clean(c.Socket) {
		return fmt.Errorf("control.state_file: must differ from control.socket")
	}
	return within("control.quiet_period", c.QuietPeriod.Duration, 0, time.Hour)
}

func within(key string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return fmt.Errorf("%s: %s must be from %s to %s", key, d, lo, hi)
	}
	return nil
}

func hostPort(key, a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port: %w", key, a, err)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%s: %q: host must be an IP address", key, a)
		}
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
		return fmt.Errorf("%s: %q: port must be a number from 0 to 65535", key, a)
	}
	return nil
}

func domainName(key, name string) error {
	if _, ok := dns.IsDomainName(name); !ok || strings.ContainsAny(name, " \t\\") {
		return fmt.Errorf("%s: %q is not a valid domain name", key, name)
	}
	return nil
}

func owner(key, o, zone string) error {
	if o == "@" {
		return nil
	}
	if strings.HasSuffix(o, ".") {
		return fmt.Errorf("%s: owner names are relative to dns.zone; write %q without the final dot, or \"@\" for the apex", key, strings.TrimSuffix(o, "."))
	}
	if strings.Contains(o, "*") {
		return fmt.Errorf("%s: wildcard owner names are not supported", key)
	}
	return domainName(key, o+"."+zone)
}

func addrs(key string, list []string, v4 bool) error {
	seen := map[netip.Addr]bool{}
	for _, s := range list {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("%s: %q is not an IP address", key, s)
		}
		if v4 && !ip.Is4() {
			return fmt.Errorf("%s: %q is not an IPv4 address", key, s)
		}
		if !v4 && (!ip.Is6() || ip.Is4In6()) {
			return fmt.Errorf("%s: %q is not an IPv6 address", key, s)
		}
		if seen[ip] {
			return fmt.Errorf("%s: %q is listed twice", key, s)
		}
		seen[ip] = true
	}
	return nil
}

func (s *Shed) validate() error {
	for _, f := range []struct {
		key    string
		v, max float64
	}{{"shed.target", s.Target, 2}, {"shed.max_fraction", s.MaxFraction, 1}, {"shed.gain", s.Gain, 10}, {"shed.max_step", s.MaxStep, 1}} {
		if f.v <= 0 || f.v > f.max {
			return fmt.Errorf("%s: %g must be above 0 and at most %g", f.key, f.v, f.max)
		}
	}
	if s.Deadband <= 0 || s.Deadband >= s.Target {
		return fmt.Errorf("shed.deadband: %g must be above 0 and below shed.target (%g)", s.Deadband, s.Target)
	}
	if s.CapacityRPS < 0 {
		return fmt.Errorf("shed.capacity_rps: %g must not be negative", s.CapacityRPS)
	}
	return nil
}

func (d *DNSSEC) validate() error {
	if len(d.PeerKeys) > 0 && len(d.Keys) == 0 {
		return fmt.Errorf("dnssec.peer_keys: needs dnssec.keys, this site's own keys (peer keys never sign)")
	}
	seen := map[string]string{}
	for i, list := range [][]string{d.Keys, d.PeerKeys} {
		key := [...]string{"dnssec.keys", "dnssec.peer_keys"}[i]
		for j, p := range list {
			base := dnssec.KeyBase(p)
			switch {
			case p == "":
				return fmt.Errorf("%s[%d]: empty path", key, j)
			case !filepath.IsAbs(p):
				return fmt.Errorf("%s[%d]: %q must be an absolute path", key, j, p)
			case seen[base] != "":
				return fmt.Errorf("%s[%d]: %q is the key of %s too", key, j, p, seen[base])
			}
			seen[base] = fmt.Sprintf("%s[%d]", key, j)
		}
	}
	v, r := d.SignatureValidity.Duration, d.Refresh.Duration
	if err := dnssec.CheckTiming(v, r); err != nil {
		return fmt.Errorf("dnssec.signature_validity and dnssec.refresh: %w", err)
	}
	if t := d.DNSKEYTTL.Duration; t <= 0 || t%time.Second != 0 || t > math.MaxInt32*time.Second {
		return fmt.Errorf("dnssec.dnskey_ttl: %s must be whole seconds, above zero", t)
	}
	return nil
}
