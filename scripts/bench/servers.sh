# shellcheck shell=bash
# The nameservers scripts/bench.sh compares, each with the same zone on its
# own loopback port and its own files under $work: spdu-haproxy behind a real
# local site (HAProxy with examples/haproxy.cfg and five demo backends), Knot
# DNS with one UDP worker, NSD with rate limiting off and gdnsd. Every server
# runs in the foreground as a background job of bench.sh, pinned to core 1
# (core 0 runs dnsperf) through the CORE0 and CORE1 command prefixes.
# Sourced, not run; uses lib.sh.

ZONE=pool.domain.tld
TTL=5

# The zone every server serves: SOA and NS at the apex, api with A and AAAA,
# www with A only (www AAAA is NODATA).
write_zone() {
  cat >"$1" <<EOF
\$ORIGIN $ZONE.
\$TTL $TTL
@    SOA  alpha.domain.tld. hostmaster.domain.tld. 1 3600 600 86400 $TTL
@    NS   alpha.domain.tld.
@    NS   beta.domain.tld.
api  A    127.0.0.1
api  AAAA ::1
www  A    127.0.0.1
EOF
}

# start_site starts five demo backends on 127.0.0.1:4441-4445, HAProxy with
# examples/haproxy.cfg (demo mode) and spdu-haproxy on port $1 with the
# default poll interval (500ms), and sets SPDU_PID and HAPROXY_PID.
start_site() {
  local port=$1 i
  for i in 1 2 3 4 5; do
    if (exec 3<>"/dev/tcp/127.0.0.1/444$i") 2>/dev/null; then
      echo "bench: 127.0.0.1:444$i is already in use (a demo running?); the site needs 4441-4445" >&2
      return 1
    fi
    start_bg "$work/backend$i.log" "${CORE0[@]}" bin/demo-backend -listen "127.0.0.1:444$i" -name "s$i"
  done
  SPDU_DEMO=1 HTTP_BIND="127.0.0.1:$HTTP_PORT" BACKUP_BIND="127.0.0.1:$BACKUP_PORT" \
    STATS_SOCKET="$work/admin.sock" AGENT_PORT="$AGENT_PORT" PEER_SITE=127.0.0.2 THUMB=bench \
    start_bg "$work/haproxy.log" "${CORE0[@]}" /usr/sbin/haproxy -db -f examples/haproxy.cfg
  HAPROXY_PID=$LAST_PID
  cat >"$work/spdu.toml" <<EOF
site = "bench"
[haproxy]
socket = "$work/admin.sock"
backend = "api"
[health]
min_up = 3
[dns]
listen = ["127.0.0.1:$port"]
zone = "$ZONE."
ttl = "${TTL}s"
nameservers = ["alpha.domain.tld.", "beta.domain.tld."]
hostmaster = "hostmaster.domain.tld."
[dns.records.api]
a = ["127.0.0.1"]
aaaa = ["::1"]
[dns.records.www]
a = ["127.0.0.1"]
[agent]
listen = "127.0.0.1:$AGENT_PORT"
[metrics]
listen = "off"
[control]
socket = "$work/control.sock"
state_file = "$work/state.json"
EOF
  chmod 600 "$work/spdu.toml"
  spdu_rrl_off
  start_bg "$work/spdu.log" "${CORE1[@]}" "$SPDU_BIN" run -config "$work/spdu.toml" -log-level warn
  SPDU_PID=$LAST_PID
  # The site starts withdrawn and serves after rise = 2 good polls, once
  # HAProxy's checks have marked the servers up.
  wait_noerror "$port" 30 spdu "$SPDU_PID"
}

# spdu_rrl_off turns the daemon's response rate limiting off in
# $work/spdu.toml, as NSD's is (every query comes from one address, so RRL
# would drop nearly all of them). BENCH_SPDU_TOML, when set, is appended
# instead. SPDU_RRL tells the report what happened.
spdu_rrl_off() {
  local extra=${BENCH_SPDU_TOML:-$'[dns.rrl]\nrate = 0'}
  cp "$work/spdu.toml" "$work/spdu.base.toml"
  printf '%s\n' "$extra" >>"$work/spdu.toml"
  if "$SPDU_BIN" check -config "$work/spdu.toml" >/dev/null 2>"$work/spdu.check"; then
    SPDU_RRL="off (\`$(echo "$extra" | tr '\n' ' ' | sed 's/ $//')\` in its configuration)"
  else
    echo "bench: spdu-haproxy rejects '$extra': $(cat "$work/spdu.check"); running with its default rate limiting" >&2
    cp "$work/spdu.base.toml" "$work/spdu.toml"
    SPDU_RRL="its default (this build has no configuration key to turn RRL off; rejected: \`$(echo "$extra" | tr '\n' ' ' | sed 's/ $//')\`), so its figures measure the rate limiter"
  fi
}

# knot_conf DIR PORT SIGNED: writes DIR/knot.conf and the zone file for
# knotd on 127.0.0.1@PORT with one UDP worker; with SIGNED=1 Knot signs the
# zone itself (dnssec-signing: on) with an automatic policy of one
# ECDSAP256SHA256 key (a CSK: single-type-signing), NSEC, no CDS/CDNSKEY,
# its key store and journal under DIR.
knot_conf() {
  local d=$1 port=$2 signed=$3 kasp="" policy="" signing=""
  mkdir -p "$d"
  write_zone "$d/$ZONE.zone"
  if [ "$signed" = 1 ]; then
    kasp="    kasp-db: $d/keys"
    policy="policy:
  - id: bench
    algorithm: ecdsap256sha256
    single-type-signing: on
    nsec3: off
    cds-cdnskey-publish: none"
    signing="    dnssec-signing: on
    dnssec-policy: bench"
  fi
  cat >"$d/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$port
    rundir: $d
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    identity: ""
    version: ""
database:
    storage: $d
$kasp
$policy
template:
  - id: default
    storage: $d
    semantic-checks: off
zone:
  - domain: $ZONE.
    file: $d/$ZONE.zone
$signing
log:
  - target: stderr
    any: warning
EOF
}

# start_knot PORT: knotd serving the zone unsigned; sets KNOT_PID.
start_knot() {
  local port=$1
  knot_conf "$work/knot" "$port" 0
  start_bg "$work/knot.log" "${CORE1[@]}" /usr/sbin/knotd -c "$work/knot/knot.conf"
  KNOT_PID=$LAST_PID
  wait_noerror "$port" 20 knot "$KNOT_PID"
}

# start_nsd PORT: nsd in the foreground (-d) with one server process and
# response rate limiting off (rrl-ratelimit: 0); sets NSD_PID. NSD forks a
# server process and xfrd: CPU and memory are summed over the process tree.
start_nsd() {
  local port=$1 d=$work/nsd
  mkdir -p "$d"
  write_zone "$d/$ZONE.zone"
  cat >"$d/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1
    port: $port
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$d"
    database: ""
    zonelistfile: "$d/zone.list"
    xfrdfile: "$d/xfrd.state"
    xfrdir: "$d"
    pidfile: "$d/nsd.pid"
    logfile: "$d/nsd.log"
    hide-version: yes
    identity: ""
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: $ZONE
    zonefile: $ZONE.zone
EOF
  start_bg "$work/nsd.log" "${CORE1[@]}" /usr/sbin/nsd -d -c "$d/nsd.conf"
  NSD_PID=$LAST_PID
  wait_noerror "$port" 20 nsd "$NSD_PID"
}

# start_gdnsd PORT: gdnsd 3 in the foreground ("start") with one UDP and one
# TCP thread and its own config, run and state directories; sets GDNSD_PID.
start_gdnsd() {
  local port=$1 d=$work/gdnsd
  mkdir -p "$d/zones" "$d/run" "$d/state"
  write_zone "$d/zones/$ZONE"
  cat >"$d/config" <<EOF
options => {
  listen => [ 127.0.0.1:$port ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => "$d/run"
  state_dir => "$d/state"
}
EOF
  start_bg "$work/gdnsd.log" "${CORE1[@]}" /usr/sbin/gdnsd -c "$d" start
  GDNSD_PID=$LAST_PID
  wait_noerror "$port" 20 gdnsd "$GDNSD_PID"
}

# start_spdu_signed PORT: a second spdu-haproxy behind the same site, with
# the configuration of start_site (rate limiting included) on DNS port PORT,
# agent port $SIGNED_AGENT_PORT and its own control socket and state file,
# serving the zone signed: one ECDSAP256SHA256 key made by `spdu-haproxy
# keygen` in $work/keys (the .private file mode 0600), named in [dnssec]
# keys. Sets SPDU_SIGNED_PID and SPDU_KEY (the key's base name).
start_spdu_signed() {
  local port=$1 spdu_port
  spdu_port=$(server_port spdu-haproxy)
  mkdir -m 700 "$work/keys"
  SPDU_KEY=$("$SPDU_BIN" keygen -zone "$ZONE." -algorithm ecdsap256sha256 -dir "$work/keys")
  # keygen prints the base name, K<zone>+<alg>+<tag>; [dnssec] keys wants
  # an absolute path.
  SPDU_KEY=$work/keys/$(basename "$SPDU_KEY")
  chmod 600 "$SPDU_KEY.private"
  sed -e "s|\"127.0.0.1:$spdu_port\"|\"127.0.0.1:$port\"|" \
    -e "s|\"127.0.0.1:$AGENT_PORT\"|\"127.0.0.1:$SIGNED_AGENT_PORT\"|" \
    -e "s|$work/control.sock|$work/control-signed.sock|" \
    -e "s|$work/state.json|$work/state-signed.json|" "$work/spdu.toml" >"$work/spdu-signed.toml"
  printf '[dnssec]\nkeys = ["%s"]\n' "$SPDU_KEY" >>"$work/spdu-signed.toml"
  chmod 600 "$work/spdu-signed.toml"
  grep -q "127.0.0.1:$port" "$work/spdu-signed.toml" || { echo "bench: cannot derive the signed daemon's configuration from $work/spdu.toml" >&2; return 1; }
  "$SPDU_BIN" check -config "$work/spdu-signed.toml" >/dev/null 2>"$work/spdu-signed.check" || {
    echo "bench: spdu-haproxy check rejects the signed configuration: $(cat "$work/spdu-signed.check")" >&2; return 1; }
  start_bg "$work/spdu-signed.log" "${CORE1[@]}" "$SPDU_BIN" run -config "$work/spdu-signed.toml" -log-level warn
  SPDU_SIGNED_PID=$LAST_PID
  wait_noerror "$port" 30 spdu-signed "$SPDU_SIGNED_PID"
}

# start_knot_signed PORT: knotd signing the zone itself (knot_conf with
# SIGNED=1, under $work/knot-signed); sets KNOT_SIGNED_PID.
start_knot_signed() {
  local port=$1
  knot_conf "$work/knot-signed" "$port" 1
  start_bg "$work/knot-signed.log" "${CORE1[@]}" /usr/sbin/knotd -c "$work/knot-signed/knot.conf"
  KNOT_SIGNED_PID=$LAST_PID
  wait_noerror "$port" 20 knot-signed "$KNOT_SIGNED_PID"
}
