// Package config owns spdu-haproxy's configuration file: the TOML schema, its
// strict decoding (an unknown key is an error), the defaults and the
// validation of every key. It produces plain values; it starts nothing and
// knows nothing of sockets, HAProxy or DNS wire formats beyond checking names
// and addresses.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/spdu/spdu-haproxy/internal/dnssec"
)

// DefaultPath is the configuration file read when -config is not given.
const DefaultPath = "/etc/spdu-haproxy/spdu-haproxy.toml"

// Config is the whole configuration of one site's daemon. Each field's doc
// names its TOML key; defaults are applied by Load (see Defaults).
type Config struct {
	// Site is this site's name, used in logs and metrics. Key "site"; required.
	Site string `toml:"site"`
	// HAProxy says where and what to poll. Table "[haproxy]".
	HAProxy HAProxy `toml:"haproxy"`
	// Health is the site health policy. Table "[health]".
	Health Health `toml:"health"`
	// DNS is the authoritative pool zone. Table "[dns]".
	DNS DNS `toml:"dns"`
	// Agent is HAProxy's agent-check target. Table "[agent]".
	Agent Agent `toml:"agent"`
	// Metrics is the Prometheus and JSON status listener. Table "[metrics]".
	Metrics Metrics `toml:"metrics"`
	// Notify says whom to tell of state changes. Table "[notify]".
	Notify Notify `toml:"notify"`
	// Control is the local control socket and the drain state file. Table
	// "[control]".
	Control Control `toml:"control"`
	// Peers are the other sites, probed in pool mode. Tables "[[peers]]".
	Peers []Peer `toml:"peers"`
	// Shed is load shedding. Table "[shed]".
	Shed Shed `toml:"shed"`
	// DNSSEC signs the pool zone. Table "[dnssec]".
	DNSSEC DNSSEC `toml:"dnssec"`
}

// DNSSEC is the "[dnssec]" table: the pool zone signed with this site's
// own keys, its DNSKEY RRset listing the other sites' public keys too
// (RFC 8901 section 2.1.2, model 2), or one key shared by every site. The
// zone is signed when Keys is not empty.
type DNSSEC struct {
	// Keys are this site's own keys: BIND key files as dnssec-keygen or
	// `spdu-haproxy keygen` write them, each named by its base name
	// ("/etc/spdu-haproxy/keys/Kpool.domain.tld.+013+12345") or either
	// of its files; both the .key and the .private file are read. Every
	// key signs (several during a rollover). Key "dnssec.keys"; default
	// none (unsigned).
	Keys []string `toml:"keys"`
	// PeerKeys are the other sites' public key files (.key), published in
	// the DNSKEY RRset and never used to sign. Key "dnssec.peer_keys".
	PeerKeys []string `toml:"peer_keys"`
	// SignatureValidity is the time from signing to a signature's
	// expiration. Key "dnssec.signature_validity"; default 14 days ("14d").
	SignatureValidity Duration `toml:"signature_validity"`
	// Refresh: signatures with less than this left are made anew. Key
	// "dnssec.refresh"; default 7 days; below signature_validity.
	Refresh Duration `toml:"refresh"`
	// DNSKEYTTL is the TTL of the DNSKEY RRset, whole seconds. Key
	// "dnssec.dnskey_ttl"; default 1h.
	DNSKEYTTL Duration `toml:"dnskey_ttl"`
}

// Enabled reports whether the zone is signed.
func (d DNSSEC) Enabled() bool { return len(d.Keys) > 0 }

// Shed is the "[shed]" table: load shedding, which sends a fraction of new
// clients to other sites while this one is near its capacity (see
// internal/shed for the utilization and the controller).
type Shed struct {
	// Enabled turns the automatic controller on; an operator's manual shed
	// (`spdu-haproxy shed`) works either way. Key "shed.enabled"; default
	// false.
	Enabled bool `toml:"enabled"`
	// Target is the utilization held (1 = at capacity). Key "shed.target";
	// default 0.8; above 0 to 2.
	Target float64 `toml:"target"`
	// MaxFraction is the most the controller sheds. Key
	// "shed.max_fraction"; default 0.9; above 0 to 1.
	MaxFraction float64 `toml:"max_fraction"`
	// CapacityRPS is the site's capacity in HTTP requests per second, if
	// known, compared with the frontend's req_rate (needs
	// haproxy.frontend). Key "shed.capacity_rps"; default 0 (none).
	CapacityRPS float64 `toml:"capacity_rps"`
	// Gain is the change of the fraction per second per unit of
	// utilization off the target. Key "shed.gain"; default 0.1; above 0 to
	// 10.
	Gain float64 `toml:"gain"`
	// MaxStep bounds the change of the fraction per second. Key
	// "shed.max_step"; default 0.05; above 0 to 1.
	MaxStep float64 `toml:"max_step"`
	// Deadband is the band around the target in which the fraction holds.
	// Key "shed.deadband"; default 0.05; below target.
	Deadband float64 `toml:"deadband"`
}

// Peer is one "[[peers]]" table: another site that pool mode hands out while
// its probe passes.
type Peer struct {
	// Name is the peer site's name. Key "peers.name"; required, unique.
	Name string `toml:"name"`
	// A and AAAA are the peer's public addresses. Keys "peers.a",
	// "peers.aaaa"; at least one address.
	A    []string `toml:"a"`
	AAAA []string `toml:"aaaa"`
	// Probe is the http or https URL of a read-only GET, healthy on 2xx.
	// Key "peers.probe"; required.
	Probe string `toml:"probe"`
	// Host is the Host header and TLS server name of the probe. Key
	// "peers.host"; default the probe URL's host.
	Host string `toml:"host"`
	// Expect, when set, must occur in the probe's response body. Key
	// "peers.expect".
	Expect string `toml:"expect"`
	// StatusURL is the peer's spdu status (published by its HAProxy at
	// /.well-known/spdu/status) for its spare capacity; without it the peer
	// counts as full. Key "peers.status_url".
	StatusURL string `toml:"status_url"`
	// Interval is the time between probes. Key "peers.interval"; default 1s;
	// 100ms to 1m.
	Interval Duration `toml:"interval"`
	// Timeout bounds one probe. Key "peers.timeout"; default 80% of
	// interval; shorter than interval.
	Timeout Duration `toml:"timeout"`
	// Rise and Fall are the consecutive good and bad probes that mark the
	// peer up and down. Keys "peers.rise", "peers.fall"; default 2; 1 to 100.
	Rise int `toml:"rise"`
	Fall int `toml:"fall"`
	// CAFile is a PEM file of CAs trusted for the probe instead of the
	// system's. Key "peers.ca_file".
	CAFile string `toml:"ca_file"`
	// InsecureSkipVerify turns TLS verification off, for tests only. Key
	// "peers.insecure_skip_verify"; default false.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// Control is the "[control]" table: how `spdu-haproxy drain|resume|status`
// reach the daemon, and where a drain is remembered.
type Control struct {
	// Socket is the unix control socket (mode 0600). Key "control.socket";
	// default "/run/spdu-haproxy/control.sock"; absolute, at most 90 bytes.
	Socket string `toml:"socket"`
	// StateFile persists a site drain across restarts (written atomically,
	// mode 0600). Key "control.state_file"; default
	// "/var/lib/spdu-haproxy/state.json"; absolute.
	StateFile string `toml:"state_file"`
	// QuietPeriod is how long the frontend's session rate must stay zero
	// before `drain -wait` returns. Key "control.quiet_period"; default 10s;
	// 0s to 1h.
	QuietPeriod *Duration `toml:"quiet_period"`
}

// Metrics is the "[metrics]" table.
type Metrics struct {
	// Listen is the TCP "host:port" serving /metrics (Prometheus text
	// format) and /status (JSON); "off" disables it. Key "metrics.listen";
	// default "127.0.0.1:9405".
	Listen string `toml:"listen"`
}

// Notify is the "[notify]" table: optional notifications on every site state
// change. Both are off when empty.
type Notify struct {
	// Exec is a command and its arguments, run with the event in SPDU_*
	// environment variables and as JSON on standard input. Key "notify.exec".
	Exec []string `toml:"exec"`
	// Webhook is an http or https URL the event JSON is POSTed to. Key
	// "notify.webhook".
	Webhook string `toml:"webhook"`
	// Timeout bounds one command run or one POST. Key "notify.timeout";
	// default 10s; 100ms to 5m.
	Timeout Duration `toml:"timeout"`
}

// HAProxy is the "[haproxy]" table: the runtime API to poll.
type HAProxy struct {
	// Socket is the runtime API unix socket path (HAProxy management guide,
	// §9.3 "Unix Socket commands"). Key "haproxy.socket"; default
	// "/run/haproxy/admin.sock".
	Socket string `toml:"socket"`
	// Backend is the backend whose servers carry the service. Key
	// "haproxy.backend"; required.
	Backend string `toml:"backend"`
	// Frontend is the frontend whose session rate `drain -wait` watches.
	// Key "haproxy.frontend"; default "" (then -wait is refused).
	Frontend string `toml:"frontend"`
	// PollInterval is the time between two polls of `show stat`. Key
	// "haproxy.poll_interval"; default 500ms; 50ms to 1m.
	PollInterval Duration `toml:"poll_interval"`
	// PollTimeout is the deadline of one poll. Key "haproxy.poll_timeout";
	// default half of poll_interval; must be shorter than poll_interval.
	PollTimeout Duration `toml:"poll_timeout"`
	// StaleAfter withdraws the site when no poll has succeeded for this long
	// (fail closed). Key "haproxy.stale_after"; default 2s; must exceed
	// poll_interval.
	StaleAfter Duration `toml:"stale_after"`
}

// Health is the "[health]" table: when the site is fit to serve.
type Health struct {
	// MinUp is the number of usable servers needed to serve: an integer, or a
	// percentage string of the backend's non-backup servers such as "60%"
	// (rounded up). Key "health.min_up"; default 1.
	MinUp MinUp `toml:"min_up"`
	// Rise is the number of consecutive good polls before serving again. Key
	// "health.rise"; default 2; 1 to 100.
	Rise int `toml:"rise"`
	// Fall is the number of consecutive polls below MinUp before withdrawing.
	// Key "health.fall"; default 2; 1 to 100.
	Fall int `toml:"fall"`
}

// DNS is the "[dns]" table: the authoritative pool zone.
type DNS struct {
	// Listen lists "host:port" addresses, each served on UDP and TCP. Key
	// "dns.listen"; default ["0.0.0.0:53"].
	Listen []string `toml:"listen"`
	// Zone is the delegated pool zone's apex, a fully qualified name (a
	// missing final dot is added). Key "dns.zone"; required.
	Zone string `toml:"zone"`
	// TTL is the TTL of every record served and the SOA minimum (negative
	// caching TTL, RFC 2308 §4). Key "dns.ttl"; default 5s; whole seconds,
	// 1s to 24h.
	TTL Duration `toml:"ttl"`
	// Nameservers are the apex NS RRset, fully qualified; the first is the
	// SOA MNAME. Key "dns.nameservers"; at least one.
	Nameservers []string `toml:"nameservers"`
	// Hostmaster is the SOA RNAME as a domain name. Key "dns.hostmaster";
	// default "hostmaster." followed by the zone.
	Hostmaster string `toml:"hostmaster"`
	// ShutdownGrace is how long the zone is answered with the withdraw rcode
	// after SIGTERM or SIGINT before the daemon exits, so resolvers move on
	// without timing out. Key "dns.shutdown_grace"; default 2s; 0s to 1m.
	ShutdownGrace *Duration `toml:"shutdown_grace"`
	// Withdraw is the rcode of every zone query while the site is withdrawn:
	// "refused" or "servfail". Key "dns.withdraw"; default "refused".
	Withdraw Withdraw `toml:"withdraw"`
	// Mode is "self" (answer with this site's addresses while healthy, the
	// withdraw rcode while not) or "pool" (also hand out every peer whose
	// probe passes). Key "dns.mode"; default "self".
	Mode DNSMode `toml:"mode"`
	// AllDown is what pool mode answers when neither this site nor any peer
	// can serve: "refuse" (the withdraw rcode, fail closed) or "all" (every
	// configured address, fail open). Key "dns.all_down"; default "refuse".
	AllDown AllDown `toml:"all_down"`
	// TTLUnstable is the TTL right after a change in what is served and
	// while the site or a peer is between states. Key "dns.ttl_unstable";
	// default 1s; whole seconds, at most dns.ttl.
	TTLUnstable Duration `toml:"ttl_unstable"`
	// MaxAnswers caps the addresses per RRset in an answer, chosen by spare
	// capacity; 0 hands out all. Key "dns.max_answers"; default 0.
	MaxAnswers int `toml:"max_answers"`
	// Identity answers NSID (RFC 5001) and CHAOS TXT id.server. and
	// hostname.bind. with the site name, so `dig +nsid` tells which site
	// answered. Key "dns.identity"; default true.
	Identity *bool `toml:"identity"`
	// CookieSecretFile holds the DNS cookie secret (RFC 7873, RFC 9018) as
	// 32 hex digits, so that all sites can share one; it must be safe like
	// the configuration file. Key "dns.cookie_secret_file"; default "" (a
	// random secret at start).
	CookieSecretFile string `toml:"cookie_secret_file"`
	// UDPSockets is the number of UDP sockets (SO_REUSEPORT, one reader
	// each) per listen address. Key "dns.udp_sockets"; default 0 (one per
	// CPU); 0 to 64.
	UDPSockets int `toml:"udp_sockets"`
	// UDPReadBuffer is each UDP socket's receive buffer in bytes. Key
	// "dns.udp_read_buffer"; default 4194304; 0 (default) or 65536 to
	// 268435456.
	UDPReadBuffer int `toml:"udp_read_buffer"`
	// TCPMaxConnections caps concurrent TCP connections; at the cap the
	// longest-idle one is closed. UDP is never affected. Key
	// "dns.tcp_max_connections"; default 1000; 0 (default) to 100000.
	TCPMaxConnections int `toml:"tcp_max_connections"`
	// TCPIdleTimeout closes a TCP connection idle this long. Key
	// "dns.tcp_idle_timeout"; default 10s; 0 (default) or 100ms to 10m.
	TCPIdleTimeout Duration `toml:"tcp_idle_timeout"`
	// TCPQueryTimeout bounds reading one query once it has started
	// (against slow-loris clients). Key "dns.tcp_query_timeout"; default 2s;
	// 0 (default) or 10ms to 1m.
	TCPQueryTimeout Duration `toml:"tcp_query_timeout"`
	// RRL is response rate limiting. Table "[dns.rrl]".
	RRL RRL `toml:"rrl"`
	// Records maps an owner name relative to the zone ("@" is the apex) to
	// its addresses. Tables "[dns.records.NAME]"; at least one.
	Records map[string]Records `toml:"records"`
}

// RRL is the "[dns.rrl]" table: response rate limiting per client prefix
// (/24 for IPv4, /56 for IPv6), as NSD and Knot do.
type RRL struct {
	// Rate is the responses per second allowed per prefix; 0 turns rate
	// limiting off. Key "dns.rrl.rate"; default 200.
	Rate *int `toml:"rate"`
	// Slip sends every Slip-th limited response truncated (TC) so real
	// resolvers retry over TCP, and drops the rest; 0 drops them all. Key
	// "dns.rrl.slip"; default 2; 0 to 10.
	Slip *int `toml:"slip"`
	// Whitelist lists prefixes (CIDR) never limited. Key "dns.rrl.whitelist".
	Whitelist []string `toml:"whitelist"`
	// Loopback also limits loopback clients, which are exempt by default
	// (they cannot be spoofed from outside). Key "dns.rrl.loopback";
	// default false.
	Loopback bool `toml:"loopback"`
}

// Records is one "[dns.records.NAME]" table.
type Records struct {
	// A lists IPv4 addresses (key "a").
	A []string `toml:"a"`
	// AAAA lists IPv6 addresses (key "aaaa").
	AAAA []string `toml:"aaaa"`
}

// Agent is the "[agent]" table: the agent-check responder (HAProxy
// configuration manual §5.2 "agent-check").
type Agent struct {
	// Listen is the TCP "host:port" HAProxy's agent-check connects to. Key
	// "agent.listen"; default "127.0.0.1:5555".
	Listen string `toml:"listen"`
	// ReadTimeout bounds the read of HAProxy's agent-send line. Key
	// "agent.read_timeout"; default 1s; 10ms to 10s.
	ReadTimeout Duration `toml:"read_timeout"`
	// Mode is "static" (every known server gets 100%) or "adaptive"
	// (response-time-aware weights). Key "agent.mode"; default "static".
	Mode AgentMode `toml:"mode"`
	// MinWeight is the adaptive floor in percent of the configured weight,
	// never 0. Key "agent.min_weight"; default 1; 1 to 100.
	MinWeight *int `toml:"min_weight"`
	// MaxLowered caps how many servers may be advertised below 100% at
	// once, in percent of the backend's non-backup servers (at least one).
	// Key "agent.max_lowered"; default 20; 1 to 100.
	MaxLowered int `toml:"max_lowered"`
	// HalfLife is the half-life of the adaptive signals' EWMA. Key
	// "agent.half_life"; default 5s; 100ms to 10m.
	HalfLife Duration `toml:"half_life"`
	// RecoveryRate bounds how fast a lowered weight climbs back, in percent
	// points per second. Key "agent.recovery_rate"; default 10; 1 to 100.
	RecoveryRate int `toml:"recovery_rate"`
	// LatencySlack is added to both a server's and the median latency
	// before comparing them, so millisecond noise changes nothing. Key
	// "agent.latency_slack"; default 10ms; 1ms to 10s.
	LatencySlack Duration `toml:"latency_slack"`
	// DrainServers also answers "drain" to HAProxy for every server during
	// a site drain, sending stray clients to the backup server (the other
	// site); only with a backup server in the backend. Key
	// "agent.drain_servers"; default false.
	DrainServers bool `toml:"drain_servers"`
}

// Duration is a time.Duration written in TOML as a Go duration string such as
// "500ms" or "2s".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string ("500ms", "2h30m") or a
// whole number of days ("14d").
func (d *Duration) UnmarshalText(b []byte) error {
	if days, ok := strings.CutSuffix(string(b), "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 1<<20 {
			d.Duration = time.Duration(n) * 24 * time.Hour
			return nil
		}
	}
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration such as \"500ms\" or \"14d\": %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string, or in days
// ("14d") when it is a whole number of them.
func (d Duration) MarshalText() ([]byte, error) {
	if day := 24 * time.Hour; d.Duration >= day && d.Duration%day == 0 {
		return []byte(strconv.FormatInt(int64(d.Duration/day), 10) + "d"), nil
	}
	return []byte(d.String()), nil
}

// Load reads, strictly decodes, fills in defaults and validates the file at
// path. Errors name the file and the offending key.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse strictly decodes TOML text, applies Defaults and runs Validate. An
// unknown key, a value of the wrong type and an invalid value are errors that
// name the key.
func Parse(b []byte) (*Config, error) {
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, errors.New(oneLine(pe.Error()))
		}
		return nil, err
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("unknown key %q", keys[0])
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func oneLine(s string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return first
}

// Defaults fills every unset key with its documented default.
func (c *Config) Defaults() {
	if c.HAProxy.Socket == "" {
		c.HAProxy.Socket = "/run/haproxy/admin.sock"
	}
	if c.HAProxy.PollInterval.Duration == 0 {
		c.HAProxy.PollInterval.Duration = 500 * time.Millisecond
	}
	if c.HAProxy.PollTimeout.Duration == 0 {
		c.HAProxy.PollTimeout.Duration = c.HAProxy.PollInterval.Duration / 2
	}
	if c.HAProxy.StaleAfter.Duration == 0 {
		c.HAProxy.StaleAfter.Duration = 2 * time.Second
	}
	if c.Health.MinUp == (MinUp{}) {
		c.Health.MinUp = MinUp{Count: 1}
	}
	if c.Health.Rise == 0 {
		c.Health.Rise = 2
	}
	if c.Health.Fall == 0 {
		c.Health.Fall = 2
	}
	if c.DNS.Listen == nil {
		c.DNS.Listen = []string{"0.0.0.0:53"}
	}
	if c.DNS.Zone != "" && !strings.HasSuffix(c.DNS.Zone, ".") {
		c.DNS.Zone += "."
	}
	c.DNS.Zone = strings.ToLower(c.DNS.Zone)
	if c.DNS.TTL.Duration == 0 {
		c.DNS.TTL.Duration = 5 * time.Second
	}
	if c.DNS.Hostmaster == "" && c.DNS.Zone != "" {
		c.DNS.Hostmaster = "hostmaster." + c.DNS.Zone
	}
	if c.DNS.Withdraw == "" {
		c.DNS.Withdraw = WithdrawRefused
	}
	if c.Agent.Listen == "" {
		c.Agent.Listen = "127.0.0.1:5555"
	}
	if c.Agent.ReadTimeout.Duration == 0 {
		c.Agent.ReadTimeout.Duration = time.Second
	}
	if c.DNS.ShutdownGrace == nil {
		c.DNS.ShutdownGrace = &Duration{2 * time.Second}
	}
	if c.Metrics.Listen == "" {
		c.Metrics.Listen = "127.0.0.1:9405"
	}
	if c.Notify.Timeout.Duration == 0 {
		c.Notify.Timeout.Duration = 10 * time.Second
	}
	if c.Agent.Mode == "" {
		c.Agent.Mode = AgentStatic
	}
	if c.Agent.MinWeight == nil {
		one := 1
		c.Agent.MinWeight = &one
	}
	if c.Agent.MaxLowered == 0 {
		c.Agent.MaxLowered = 20
	}
	if c.Agent.HalfLife.Duration == 0 {
		c.Agent.HalfLife.Duration = 5 * time.Second
	}
	if c.Agent.RecoveryRate == 0 {
		c.Agent.RecoveryRate = 10
	}
	if c.Agent.LatencySlack.Duration == 0 {
		c.Agent.LatencySlack.Duration = 10 * time.Millisecond
	}
	if c.Control.Socket == "" {
		c.Control.Socket = "/run/spdu-haproxy/control.sock"
	}
	if c.Control.StateFile == "" {
		c.Control.StateFile = "/var/lib/spdu-haproxy/state.json"
	}
	if c.Control.QuietPeriod == nil {
		c.Control.QuietPeriod = &Duration{10 * time.Second}
	}
	if c.DNS.Identity == nil {
		yes := true
		c.DNS.Identity = &yes
	}
	if c.DNS.RRL.Rate == nil {
		r := 200
		c.DNS.RRL.Rate = &r
	}
	if c.DNS.RRL.Slip == nil {
		sl := 2
		c.DNS.RRL.Slip = &sl
	}
	if c.DNS.Mode == "" {
		c.DNS.Mode = ModeSelf
	}
	if c.DNS.AllDown == "" {
		c.DNS.AllDown = AllDownRefuse
	}
	if c.DNSSEC.SignatureValidity.Duration == 0 {
		c.DNSSEC.SignatureValidity.Duration = dnssec.DefaultValidity
	}
	if c.DNSSEC.Refresh.Duration == 0 {
		c.DNSSEC.Refresh.Duration = dnssec.DefaultRefresh
	}
	if c.DNSSEC.DNSKEYTTL.Duration == 0 {
		c.DNSSEC.DNSKEYTTL.Duration = time.Hour
	}
	if c.Shed.Target == 0 {
		c.Shed.Target = 0.8
	}
	if c.Shed.MaxFraction == 0 {
		c.Shed.MaxFraction = 0.9
	}
	if c.Shed.Gain == 0 {
		c.Shed.Gain = 0.1
	}
	if c.Shed.MaxStep == 0 {
		c.Shed.MaxStep = 0.05
	}
	if c.Shed.Deadband == 0 {
		c.Shed.Deadband = 0.05
	}
	if c.DNS.TTLUnstable.Duration == 0 {
		c.DNS.TTLUnstable.Duration = min(time.Second, c.DNS.TTL.Duration)
	}
	for i := range c.Peers {
		p := &c.Peers[i]
		if p.Interval.Duration == 0 {
			p.Interval.Duration = time.Second
		}
		if p.Timeout.Duration == 0 {
			p.Timeout.Duration = p.Interval.Duration * 8 / 10
		}
		if p.Rise == 0 {
			p.Rise = 2
		}
		if p.Fall == 0 {
			p.Fall = 2
		}
		if p.Host == "" {
			if u, err := url.Parse(p.Probe); err == nil {
				p.Host = u.Hostname()
			}
		}
	}
}

// Encode writes the configuration as TOML, as `spdu-haproxy check` prints the
// effective configuration.
func (c *Config) Encode() (string, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	return buf.String(), nil
}

// Addrs returns the validated addresses of r; call it only on a Config that
// passed Validate (an unparsable address is skipped).
func (r Records) Addrs() (a, aaaa []netip.Addr) {
	for _, s := range r.A {
		if ip, err := netip.ParseAddr(s); err == nil {
			a = append(a, ip)
		}
	}
	for _, s := range r.AAAA {
		if ip, err := netip.ParseAddr(s); err == nil {
			aaaa = append(aaaa, ip)
		}
	}
	return a, aaaa
}
