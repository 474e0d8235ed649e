package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const minimal = `
site = "alpha"
[haproxy]
backend = "api"
[dns]
zone = "Pool.Domain.TLD"
nameservers = ["alpha.domain.tld."]
[dns.records.api]
a = ["1.2.3.4"]
`

func TestParseDefaults(t *testing.T) {
	one, rate, slip, yes := 1, 200, 2, true
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Site: "alpha",
		HAProxy: HAProxy{
			Socket:       "/run/haproxy/admin.sock",
			Backend:      "api",
			PollInterval: Duration{500 * time.Millisecond},
			PollTimeout:  Duration{250 * time.Millisecond},
			StaleAfter:   Duration{2 * time.Second},
		},
		Health: Health{MinUp: MinUp{Count: 1}, Rise: 2, Fall: 2},
		DNS: DNS{
			Listen:        []string{"0.0.0.0:53"},
			Zone:          "pool.domain.tld.",
			TTL:           Duration{5 * time.Second},
			Nameservers:   []string{"alpha.domain.tld."},
			Hostmaster:    "hostmaster.pool.domain.tld.",
			Withdraw:      "refused",
			Mode:          "self",
			Identity:      &yes,
			RRL:           RRL{Rate: &rate, Slip: &slip},
			AllDown:       "refuse",
			TTLUnstable:   Duration{time.Second},
			ShutdownGrace: &Duration{2 * time.Second},
			Records:       map[string]Records{"api": {A: []string{"1.2.3.4"}}},
		},
		Agent: Agent{Listen: "127.0.0.1:5555", ReadTimeout: Duration{time.Second}, Mode: "static", MinWeight: &one, MaxLowered: 20,
			HalfLife: Duration{5 * time.Second}, RecoveryRate: 10, LatencySlack: Duration{10 * time.Millisecond}},
		Control: Control{Socket: "/run/spdu-haproxy/control.sock", StateFile: "/var/lib/spdu-haproxy/state.json",
			QuietPeriod: &Duration{10 * time.Second}},
		Metrics: Metrics{Listen: "127.0.0.1:9405"},
		Notify:  Notify{Timeout: Duration{10 * time.Second}},
		Shed:    Shed{Target: 0.8, MaxFraction: 0.9, Gain: 0.1, MaxStep: 0.05, Deadband: 0.05},
		DNSSEC: DNSSEC{SignatureValidity: Duration{14 * 24 * time.Hour}, Refresh: Duration{7 * 24 * time.Hour},
			DNSKEYTTL: Duration{time.Hour}},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestExamplesAreValid(t *testing.T) {
	for _, f := range []string{"alpha.toml", "beta.toml"} {
		t.Run(f, func(t *testing.T) {
			c, err := Load(filepath.Join("..", "..", "examples", f))
			if err != nil {
				t.Fatal(err)
			}
			if c.Health.MinUp != (MinUp{Count: 3}) {
				t.Errorf("min_up = %v, want 3", c.Health.MinUp)
			}
		})
	}
}

// TestEncodeRoundTrip checks that what `check` prints parses back to the same
// configuration.
func TestEncodeRoundTrip(t *testing.T) {
	for _, extra := range []string{"", "[health]\nmin_up = \"60%\"\n"} {
		c, err := Parse([]byte(minimal + extra))
		if err != nil {
			t.Fatal(err)
		}
		text, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse([]byte(text))
		if err != nil {
			t.Fatalf("re-parse of encoded config: %v\n%s", err, text)
		}
		if diff := cmp.Diff(c, back); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestMinUp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want MinUp
	}{
		{`3`, MinUp{Count: 3}},
		{`"3"`, MinUp{Count: 3}},
		{`"60%"`, MinUp{Percent: 60}},
		{`"100%"`, MinUp{Percent: 100}},
	} {
		c, err := Parse([]byte(minimal + "[health]\nmin_up = " + tc.in + "\n"))
		if err != nil {
			t.Errorf("min_up = %s: %v", tc.in, err)
			continue
		}
		if c.Health.MinUp != tc.want {
			t.Errorf("min_up = %s: got %+v, want %+v", tc.in, c.Health.MinUp, tc.want)
		}
	}
}

// TestInvalid is the table of invalid files: each must fail with exactly the
// error given, which names the key and the reason.
func TestInvalid(t *testing.T) {
	// replace swaps one line of the minimal file; add appends text; pool
	// appends text to the minimal file in pool mode.
	replace := func(old, new string) string { return strings.Replace(minimal, old, new, 1) }
	add := func(s string) string { return minimal + s }
	pool := func(s string) string { return replace(`zone =`, "mode = \"pool\"\nzone =") + s }
	const peer = "[[peers]]\nname = \"beta\"\na = [\"5.6.7.8\"]\nprobe = \"https://5.6.7.8/status\"\n"
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unknown top key", "colour = \"blue\"\n" + minimal, `unknown key "colour"`},
		{"unknown nested key", add("[haproxy.extra]\nx = 1\n"), `unknown key "haproxy.extra"`},
		{"typo in dns", replace(`zone =`, `zonee = "x."
zone =`), `unknown key "dns.zonee"`},
		{"missing site", replace(`site = "alpha"`, ``), `site: required`},
		{"bad site", replace(`site = "alpha"`, `site = "al pha"`), `site: "al pha" must be 1-63 letters, digits, '.', '_' or '-'`},
		{"syntax", add("[dns\n"), `toml: line 11 (last key "dns.records.api"): expected '.' or ']' to end table name, but got '\n' instead`},
		{"wrong type", add("[health]\nrise = \"two\"\n"), `toml: line 11 (last key "health.rise"): incompatible types: TOML value has type string; destination has type integer`},
		{"missing backend", replace(`backend = "api"`, `socket = "/run/x.sock"`), `haproxy.backend: required`},
		{"socket not absolute", replace(`backend = "api"`, "backend = \"api\"\nsocket = \"admin.sock\""), `haproxy.socket: "admin.sock" must be an absolute path`},
		{"backend with space", replace(`backend = "api"`, `backend = "a b"`), `haproxy.backend: "a b" is not a valid HAProxy proxy name`},
		{"peer keys alone", add("[dnssec]\npeer_keys = [\"/k/Kpool.domain.tld.+013+1.key\"]\n"), `dnssec.peer_keys: needs dnssec.keys, this site's own keys (peer keys never sign)`},
		{"relative key", add("[dnssec]\nkeys = [\"Kpool.domain.tld.+013+1\"]\n"), `dnssec.keys[0]: "Kpool.domain.tld.+013+1" must be an absolute path`},
		{"same key twice", add("[dnssec]\nkeys = [\"/k/Kp+013+1.private\"]\npeer_keys = [\"/k/Kp+013+1.key\"]\n"), `dnssec.peer_keys[0]: "/k/Kp+013+1.key" is the key of dnssec.keys[0] too`},
		{"refresh above validity", add("[dnssec]\nkeys = [\"/k/K1\"]\nsignature_validity = \"7d\"\nrefresh = \"8d\"\n"), `dnssec.signature_validity and dnssec.refresh: signature validity 168h0m0s must be longer than refresh 192h0m0s`},
		{"dnskey ttl fraction", add("[dnssec]\nkeys = [\"/k/K1\"]\ndnskey_ttl = \"1.5s\"\n"), `dnssec.dnskey_ttl: 1.5s must be whole seconds, above zero`},
		{"bad days", add("[dnssec]\nkeys = [\"/k/K1\"]\nrefresh = \"1.5d\"\n"), `toml: line 12 (last key "dnssec.refresh"): not a duration such as "500ms" or "14d": "1.5d"`},
		{"bad duration", replace(`backend = "api"`, "backend = \"api\"\npoll_interval = \"fast\""), `toml: line 5 (last key "haproxy.poll_interval"): not a duration such as "500ms" or "14d": "fast"`},
		{"poll too fast", replace(`backend = "api"`, "backend = \"api\"\npoll_interval = \"1ms\""), `haproxy.poll_interval: 1ms must be from 50ms to 1m0s`},
		{"poll timeout too long", replace(`backend = "api"`, "backend = \"api\"\npoll_timeout = \"1s\""), `haproxy.poll_timeout: 1s must be positive and shorter than haproxy.poll_interval (500ms)`},
		{"stale too short", replace(`backend = "api"`, "backend = \"api\"\nstale_after = \"100ms\""), `haproxy.stale_after: 100ms must be longer than haproxy.poll_interval (500ms)`},
		{"min_up zero", add("[health]\nmin_up = 0\n"), `toml: line 11 (last key "health.min_up"): 0 is not a server count from 1 to 100000`},
		{"min_up percent", add("[health]\nmin_up = \"160%\"\n"), `toml: line 11 (last key "health.min_up"): "160%" is not a percentage from 1% to 100%`},
		{"min_up word", add("[health]\nmin_up = \"most\"\n"), `toml: line 11 (last key "health.min_up"): "most" is neither a server count nor a percentage such as "60%"`},
		{"rise negative", add("[health]\nrise = -1\n"), `health.rise: -1 must be from 1 to 100`},
		{"fall too big", add("[health]\nfall = 1000\n"), `health.fall: 1000 must be from 1 to 100`},
		{"no listen", replace(`zone =`, "listen = []\nzone ="), `dns.listen: at least one address is required`},
		{"listen no port", replace(`zone =`, "listen = [\"127.0.0.1\"]\nzone ="), `dns.listen: "127.0.0.1" is not host:port: address 127.0.0.1: missing port in address`},
		{"listen hostname", replace(`zone =`, "listen = [\"localhost:53\"]\nzone ="), `dns.listen: "localhost:53": host must be an IP address`},
		{"listen bad port", replace(`zone =`, "listen = [\"127.0.0.1:99999\"]\nzone ="), `dns.listen: "127.0.0.1:99999": port must be a number from 0 to 65535`},
		{"missing zone", replace(`zone = "Pool.Domain.TLD"`, ``), `dns.zone: required`},
		{"bad zone", replace(`zone = "Pool.Domain.TLD"`, `zone = "pool..tld"`), `dns.zone: "pool..tld." is not a valid domain name`},
		{"ttl fraction", replace(`zone =`, "ttl = \"1500ms\"\nzone ="), `dns.ttl: 1.5s must be a whole number of seconds`},
		{"ttl too long", replace(`zone =`, "ttl = \"48h\"\nzone ="), `dns.ttl: 48h0m0s must be from 1s to 24h0m0s`},
		{"no nameservers", replace(`nameservers = ["alpha.domain.tld."]`, ``), `dns.nameservers: at least one name server is required`},
		{"relative nameserver", replace(`["alpha.domain.tld."]`, `["alpha"]`), `dns.nameservers: "alpha" must be fully qualified (end with a dot)`},
		{"relative hostmaster", replace(`zone =`, "hostmaster = \"root\"\nzone ="), `dns.hostmaster: "root" must be fully qualified (end with a dot)`},
		{"withdraw word", replace(`zone =`, "withdraw = \"silence\"\nzone ="), `dns.withdraw: "silence" must be "refused" or "servfail"`},
		{"no records", replace("[dns.records.api]\na = [\"1.2.3.4\"]\n", ""), `dns.records: at least one [dns.records.NAME] table is required`},
		{"empty record", replace(`a = ["1.2.3.4"]`, ``), `dns.records.api: needs at least one address in a or aaaa`},
		{"absolute owner", add("[dns.records.\"www.\"]\na = [\"1.2.3.4\"]\n"), `dns.records.www.: owner names are relative to dns.zone; write "www" without the final dot, or "@" for the apex`},
		{"wildcard owner", add("[dns.records.\"*\"]\na = [\"1.2.3.4\"]\n"), `dns.records.*: wildcard owner names are not supported`},
		{"duplicate owner", add("[dns.records.API]\na = [\"1.2.3.4\"]\n"), `dns.records.api: same owner name as dns.records.API`},
		{"a not ip", replace(`a = ["1.2.3.4"]`, `a = ["1.2.3"]`), `dns.records.api.a: "1.2.3" is not an IP address`},
		{"a is v6", replace(`a = ["1.2.3.4"]`, `a = ["::1"]`), `dns.records.api.a: "::1" is not an IPv4 address`},
		{"aaaa is v4", replace(`a = ["1.2.3.4"]`, `aaaa = ["1.2.3.4"]`), `dns.records.api.aaaa: "1.2.3.4" is not an IPv6 address`},
		{"a twice", replace(`a = ["1.2.3.4"]`, `a = ["1.2.3.4", "1.2.3.4"]`), `dns.records.api.a: "1.2.3.4" is listed twice`},
		{"shed target", add("[shed]\ntarget = 3.0\n"), `shed.target: 3 must be above 0 and at most 2`},
		{"shed deadband", add("[shed]\ntarget = 0.5\ndeadband = 0.6\n"), `shed.deadband: 0.6 must be above 0 and below shed.target (0.5)`},
		{"shed max_fraction", add("[shed]\nmax_fraction = 1.5\n"), `shed.max_fraction: 1.5 must be above 0 and at most 1`},
		{"shed gain", add("[shed]\ngain = -1.0\n"), `shed.gain: -1 must be above 0 and at most 10`},
		{"shed capacity", add("[shed]\ncapacity_rps = -1.0\n"), `shed.capacity_rps: -1 must not be negative`},
		{"agent max_lowered", add("[agent]\nmax_lowered = 101\n"), `agent.max_lowered: 101 must be from 1 to 100 percent of the servers`},
		{"agent listen", add("[agent]\nlisten = \"5555\"\n"), `agent.listen: "5555" is not host:port: address 5555: missing port in address`},
		{"agent timeout", add("[agent]\nread_timeout = \"1m\"\n"), `agent.read_timeout: 1m0s must be from 10ms to 10s`},
		{"grace too long", replace(`zone =`, "shutdown_grace = \"2m\"\nzone ="), `dns.shutdown_grace: 2m0s must be from 0s to 1m0s`},
		{"metrics listen", add("[metrics]\nlisten = \"localhost\"\n"), `metrics.listen: "localhost" is not host:port: address localhost: missing port in address`},
		{"notify empty exec", add("[notify]\nexec = []\n"), `notify.exec: needs a command, e.g. ["/usr/local/bin/notify", "--site"]`},
		{"notify relative exec", add("[notify]\nexec = [\"mail\"]\n"), `notify.exec: command "mail" must be an absolute path`},
		{"notify webhook", add("[notify]\nwebhook = \"ftp://x\"\n"), `notify.webhook: "ftp://x" is not an http or https URL`},
		{"bad mode", replace(`zone =`, "mode = \"mesh\"\nzone ="), `dns.mode: "mesh" must be "self" or "pool"`},
		{"bad all_down", replace(`zone =`, "all_down = \"none\"\nzone ="), `dns.all_down: "none" must be "refuse" or "all"`},
		{"ttl_unstable above ttl", replace(`zone =`, "ttl = \"5s\"\nttl_unstable = \"10s\"\nzone ="), `dns.ttl_unstable: 10s must be whole seconds from 1s to dns.ttl (5s)`},
		{"max_answers", replace(`zone =`, "max_answers = -1\nzone ="), `dns.max_answers: -1 must be from 0 (all) to 64`},
		{"peers in self mode", add(peer), `peers: configured, but dns.mode is "self", which never hands out peers; set dns.mode = "pool" or remove them`},
		{"peer without name", pool(strings.Replace(peer, `name = "beta"`, ``, 1)), `peers[0].name: required`},
		{"peer named like the site", pool(strings.Replace(peer, `name = "beta"`, `name = "alpha"`, 1)), `peers[0].name: "alpha" is used twice (sites and peers need distinct names)`},
		{"peer without address", pool(strings.Replace(peer, `a = ["5.6.7.8"]`, ``, 1)), `peers.beta: needs at least one address in a or aaaa`},
		{"peer bad address", pool(strings.Replace(peer, `a = ["5.6.7.8"]`, `a = ["5.6.7"]`, 1)), `peers.beta.a: "5.6.7" is not an IP address`},
		{"peer bad probe", pool(strings.Replace(peer, `https://5.6.7.8/status`, `5.6.7.8/status`, 1)), `peers.beta.probe: "5.6.7.8/status" is not an http or https URL`},
		{"peer timeout", pool(peer + "timeout = \"2s\"\n"), `peers.beta.timeout: 2s must be positive and shorter than peers.beta.interval (1s)`},
		{"peer rise", pool(peer + "rise = 101\n"), `peers.beta.rise: 101 must be from 1 to 100`},
		{"peer unknown key", pool(peer + "weight = 3\n"), `unknown key "peers.weight"`},
		{"agent mode", add("[agent]\nmode = \"smart\"\n"), `agent.mode: "smart" must be "static" or "adaptive"`},
		{"min_weight zero", add("[agent]\nmin_weight = 0\n"), `agent.min_weight: 0 must be from 1 to 100 (0 would make HAProxy count the server unusable)`},
		{"half_life", add("[agent]\nhalf_life = \"1h\"\n"), `agent.half_life: 1h0m0s must be from 100ms to 10m0s`},
		{"recovery_rate", add("[agent]\nrecovery_rate = 500\n"), `agent.recovery_rate: 500 must be from 1 to 100 percent points per second`},
		{"latency_slack", add("[agent]\nlatency_slack = \"0.1ms\"\n"), `agent.latency_slack: 100µs must be from 1ms to 10s`},
		{"frontend name", replace(`backend = "api"`, "backend = \"api\"\nfrontend = \"w w\""), `haproxy.frontend: "w w" is not a valid HAProxy proxy name`},
		{"control socket relative", add("[control]\nsocket = \"ctl.sock\"\n"), `control.socket: "ctl.sock" must be an absolute path of at most 90 bytes`},
		{"control state file", add("[control]\nstate_file = \"state.json\"\n"), `control.state_file: "state.json" must be an absolute path`},
		{"control same paths", add("[control]\nsocket = \"/run/x\"\nstate_file = \"/run/x\"\n"), `control.state_file: must differ from control.socket`},
		{"quiet period", add("[control]\nquiet_period = \"2h\"\n"), `control.quiet_period: 2h0m0s must be from 0s to 1h0m0s`},
		{"cookie file", replace(`zone =`, "cookie_secret_file = \"secret\"\nzone ="), `dns.cookie_secret_file: "secret" must be an absolute path`},
		{"udp sockets", replace(`zone =`, "udp_sockets = 100\nzone ="), `dns.udp_sockets: 100 must be from 0 (one per CPU) to 64`},
		{"udp buffer", replace(`zone =`, "udp_read_buffer = 10\nzone ="), `dns.udp_read_buffer: 10 must be from 65536 to 268435456 bytes`},
		{"tcp idle", replace(`zone =`, "tcp_idle_timeout = \"1h\"\nzone ="), `dns.tcp_idle_timeout: 1h0m0s must be from 100ms to 10m0s`},
		{"rrl rate", add("[dns.rrl]\nrate = -5\n"), `dns.rrl.rate: -5 must be from 0 (off) to 1000000 responses per second`},
		{"rrl slip", add("[dns.rrl]\nslip = 20\n"), `dns.rrl.slip: 20 must be from 0 (drop all) to 10`},
		{"rrl whitelist", add("[dns.rrl]\nwhitelist = [\"10.0.0.1\"]\n"), `dns.rrl.whitelist: "10.0.0.1" is not a prefix such as "192.0.2.0/24"`},
		{"notify timeout", add("[notify]\ntimeout = \"1ms\"\n"), `notify.timeout: 1ms must be from 100ms to 5m0s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(p, []byte("site = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), "config "+p+": ") {
		t.Errorf("Load error = %v, want it to start with the file name", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestPeersDefaults(t *testing.T) {
	text := strings.Replace(minimal, "zone =", "mode = \"pool\"\nzone =", 1) +
		"[[peers]]\nname = \"beta\"\na = [\"5.6.7.8\"]\nprobe = \"https://5.6.7.8/status\"\nhost = \"api.domain.tld\"\n" +
		"[[peers]]\nname = \"gamma\"\naaaa = [\"2001:db8::3\"]\nprobe = \"http://[2001:db8::3]:8080/status\"\ninterval = \"500ms\"\n"
	c, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []Peer{
		{Name: "beta", A: []string{"5.6.7.8"}, Probe: "https://5.6.7.8/status", Host: "api.domain.tld",
			Interval: Duration{time.Second}, Timeout: Duration{800 * time.Millisecond}, Rise: 2, Fall: 2},
		{Name: "gamma", AAAA: []string{"2001:db8::3"}, Probe: "http://[2001:db8::3]:8080/status", Host: "2001:db8::3",
			Interval: Duration{500 * time.Millisecond}, Timeout: Duration{400 * time.Millisecond}, Rise: 2, Fall: 2},
	}
	if diff := cmp.Diff(want, c.Peers); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
}
