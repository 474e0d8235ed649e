#!/usr/bin/env bash
# A full local spdu site on unprivileged loopback ports: five demo backends on
# 127.0.0.1:4441-4445, HAProxy with examples/haproxy.cfg, and spdu-haproxy
# serving pool.domain.tld on 127.0.0.1:15353. It shows the zone answering,
# stops three backends and shows the zone withdrawn (REFUSED) with the time it
# took, then restores them. Everything it started is stopped on exit.
# Run it with `make demo` (which builds bin/ and installs haproxy, dig and
# curl with `scripts/deps.sh demo`).
set -euo pipefail
cd "$(dirname "$0")/.."

DNS_PORT=${DNS_PORT:-15353}
AGENT_PORT=${AGENT_PORT:-15555}
HTTP_PORT=${HTTP_PORT:-18080}
ZONE=pool.domain.tld
work=$(mktemp -d /tmp/spdu-demo.XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now_ms() { date +%s%3N; }
rcode() { dig @127.0.0.1 -p "$DNS_PORT" +norec +time=1 +tries=1 "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }
# wait_for RCODE SECONDS: poll every 50 ms until the service name gets RCODE.
wait_for() {
  local want=$1 deadline=$(( $(now_ms) + $2 * 1000 ))
  while [ "$(rcode api.$ZONE A)" != "$want" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "no $want within $2 s" >&2; return 1; }
    sleep 0.05
  done
}

say "starting five demo backends on 127.0.0.1:4441-4445"
declare -A backend_pid
for i in 1 2 3 4 5; do
  bin/demo-backend -listen "127.0.0.1:444$i" -name "s$i" & backend_pid[$i]=$!; pids+=($!)
done

say "starting HAProxy with examples/haproxy.cfg (demo ports; its log: $work/haproxy.log)"
SPDU_DEMO=1 SPDU_STATUS=127.0.0.1:19405 HTTP_BIND="127.0.0.1:$HTTP_PORT" BACKUP_BIND=127.0.0.1:18443 \
  STATS_SOCKET="$work/admin.sock" AGENT_PORT="$AGENT_PORT" PEER_SITE=127.0.0.2 THUMB=demo-thumbprint \
  /usr/sbin/haproxy -db -f examples/haproxy.cfg >"$work/haproxy.log" 2>&1 & pids+=($!)

cat > "$work/demo.toml" <<EOF
site = "demo"
[haproxy]
socket = "$work/admin.sock"
backend = "api"
poll_interval = "500ms"
stale_after = "2s"
[health]
min_up = 3
rise = 2
fall = 2
[dns]
listen = ["127.0.0.1:$DNS_PORT"]
zone = "$ZONE."
ttl = "5s"
nameservers = ["alpha.domain.tld.", "beta.domain.tld."]
hostmaster = "hostmaster.domain.tld."
[dns.records.api]
a = ["127.0.0.1"]
aaaa = ["::1"]
[agent]
listen = "127.0.0.1:$AGENT_PORT"
[metrics]
listen = "127.0.0.1:19405"
[control]
socket = "$work/control.sock"
state_file = "$work/state.json"
quiet_period = "1s"
EOF
chmod 600 "$work/demo.toml"

say "starting spdu-haproxy (log below, console format)"
bin/spdu-haproxy run -config "$work/demo.toml" -log-format console & pids+=($!)

wait_for NOERROR 20
say "the zone is served: dig @127.0.0.1 -p $DNS_PORT api.$ZONE"
dig @127.0.0.1 -p "$DNS_PORT" +norec api.$ZONE A +noall +answer +comments | grep -E 'status|flags|IN'
dig @127.0.0.1 -p "$DNS_PORT" +norec api.$ZONE AAAA +short
dig @127.0.0.1 -p "$DNS_PORT" +norec $ZONE SOA +short
echo "nothere.$ZONE: $(rcode nothere.$ZONE A)   example.com: $(rcode example.com A)"
say "through HAProxy: curl http://127.0.0.1:$HTTP_PORT/"
for _ in 1 2 3; do curl -s "http://127.0.0.1:$HTTP_PORT/" || true; done
echo "ACME http-01: $(curl -s "http://127.0.0.1:$HTTP_PORT/.well-known/acme-challenge/tok3n")"
echo "spdu status for peers: $(curl -s "http://127.0.0.1:$HTTP_PORT/.well-known/spdu/status" | tr -d ' \n' | cut -c1-120)..."

say "stopping backends s1 s2 s3 (min_up = 3 of 5)"
start=$(now_ms)
for i in 1 2 3; do kill "${backend_pid[$i]}"; done
wait_for REFUSED 20
echo "first REFUSED $(( $(now_ms) - start )) ms after the backends stopped"
echo "(HAProxy needs about 2 s to mark them down: check inter 1s fall 2; spdu-haproxy then withdraws"
echo " after fall = 2 polls of 500 ms)"
dig @127.0.0.1 -p "$DNS_PORT" +norec api.$ZONE A | grep status

say "starting s1 s2 s3 again"
start=$(now_ms)
for i in 1 2 3; do bin/demo-backend -listen "127.0.0.1:444$i" -name "s$i" & pids+=($!); done
wait_for NOERROR 20
echo "answers back $(( $(now_ms) - start )) ms after the backends started"
dig @127.0.0.1 -p "$DNS_PORT" +norec api.$ZONE A +short

say "demo done; stopping everything"
