#!/usr/bin/env bash
# Benchmarks of issue 4, written to docs/benchmarks.md (see its Method
# section). Runs on a fresh Debian machine as root or with sudo: it installs
# what is missing with `scripts/deps.sh bench` (dnsperf, knot, nsd, gdnsd,
# haproxy, bind9-dnsutils, procps) and builds bin/.
#
#   scripts/bench.sh [all]  idle, dns, dnssec, then poll (default; the Go
#                           benchmarks of dnssec run first)
#   scripts/bench.sh dns    DNS load: spdu-haproxy (behind a real local site),
#                           Knot DNS, NSD and gdnsd with the same zone, 4 query
#                           mixes, BENCH_ROUNDS rounds of BENCH_SECONDS per run
#   scripts/bench.sh dnssec DNS load with the DNSSEC OK bit (dnsperf -D), A and
#                           mixed: spdu-haproxy unsigned, spdu-haproxy signed
#                           (a key from `spdu-haproxy keygen`, [dnssec] keys)
#                           and Knot signing the zone itself, BENCH_ROUNDS
#                           rounds of BENCH_SECONDS per run; before any
#                           server starts, the Go benchmarks of signing and
#                           of signed answers (internal/dnsserve:
#                           BenchmarkSignSwitch, BenchmarkRespondSigned,
#                           BenchmarkRespond), -benchtime BENCH_GO_BENCHTIME
#   scripts/bench.sh idle   the daemon's CPU with an idle zone, polling
#                           HAProxy every 500 ms, over BENCH_IDLE_SECONDS
#   scripts/bench.sh poll   the Go poll-cost benchmark, 1,000 and 10,000
#                           servers (internal/bench)
#
# Each part replaces its own section of docs/benchmarks.md (BENCH_OUT).
# Environment: BENCH_SECONDS (default 8) per dnsperf run, BENCH_ROUNDS (3),
# BENCH_IDLE_SECONDS (20), BENCH_DNSPERF_OPTS ("-c 4 -q 100 -t 2"),
# BENCH_GO_BENCHTIME (BENCH_SECONDS / 8 seconds, so 1s by default),
# BENCH_PIN (1 with two cores or more: servers on core 1, load on core 0),
# BENCH_PORT (25350: DNS ports PORT+1..PORT+4, agent PORT+5, HTTP PORT+6,
# backup PORT+7, signed spdu-haproxy PORT+8 and its agent PORT+10, signed
# Knot PORT+9; the demo backends need 127.0.0.1:4441-4445),
# BENCH_OUT (docs/benchmarks.md), BENCH_SPDU_BIN (a prebuilt spdu-haproxy to
# measure instead of building bin/spdu-haproxy), BENCH_SPDU_TOML (TOML lines
# appended to the daemon's configuration; default `[dns.rrl]` `rate = 0`,
# response rate limiting off), BENCH_QUIET (unset; a load average such as
# 0.5: before each measured part wait until the 1-minute load average is
# below it, polling every 30 s, at most BENCH_QUIET_WAIT seconds, 1200).
# With the defaults `all` takes about 12 minutes (dnssec alone about 3.5): 48 dnsperf runs of 8 s
# (dns), 18 more (dnssec), 20 s idle, about 30 s of poll benchmark and 50 s
# of signing benchmarks, plus set-up. Everything listens on 127.0.0.1 only
# and everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

part=${1:-all}
case $part in
  all | dns | dnssec | idle | poll) ;;
  *) echo "usage: scripts/bench.sh [all|dns|dnssec|idle|poll]" >&2; exit 2 ;;
esac

SECONDS_PER_RUN=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-3}
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-20}
DNSPERF_OPTS=${BENCH_DNSPERF_OPTS:-"-c 4 -q 100 -t 2"}
OUT=${BENCH_OUT:-docs/benchmarks.md}
PORT=${BENCH_PORT:-25350}
if [ "$(nproc)" -ge 2 ]; then PIN=${BENCH_PIN:-1}; else PIN=0; fi
CLK_TCK=$(getconf CLK_TCK)
SERVERS="spdu-haproxy knot nsd gdnsd"
MIXES="a mixed a+edns mixed+edns"

# The dnssec part: the same query files with the DO bit.
DNSSEC_SERVERS="spdu-haproxy spdu-signed knot-signed"
DNSSEC_MIXES="a+do mixed+do"
GO_BENCHTIME=${BENCH_GO_BENCHTIME:-$(awk -v s="$SECONDS_PER_RUN" 'BEGIN {printf "%dms", s * 125}')}
AGENT_PORT=$((PORT + 5)) HTTP_PORT=$((PORT + 6)) BACKUP_PORT=$((PORT + 7))
SIGNED_AGENT_PORT=$((PORT + 10))

. scripts/bench/lib.sh
. scripts/bench/servers.sh
. scripts/bench/report.sh
set_pinning

work=$(mktemp -d /tmp/spdu-bench.XXXXXX)
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# install_missing installs the Debian packages the benchmark runs, only when
# something is missing, with scripts/deps.sh (which also stops and disables
# the daemons' own services that started on install).
install_missing() {
  ./scripts/deps.sh bench
}

server_port() {
  case $1 in
    spdu-haproxy) echo $((PORT + 1)) ;; knot) echo $((PORT + 2)) ;;
    nsd) echo $((PORT + 3)) ;; gdnsd) echo $((PORT + 4)) ;;
    spdu-signed) echo $((PORT + 8)) ;; knot-signed) echo $((PORT + 9)) ;;
  esac
}

server_pid() {
  case $1 in
    spdu-haproxy) echo "$SPDU_PID" ;; knot) echo "$KNOT_PID" ;;
    nsd) echo "$NSD_PID" ;; gdnsd) echo "$GDNSD_PID" ;;
    spdu-signed) echo "$SPDU_SIGNED_PID" ;; knot-signed) echo "$KNOT_SIGNED_PID" ;;
  esac
}

server_version() {
  case $1 in
    spdu-haproxy | spdu-signed) "$SPDU_BIN" version 2>&1 | head -n 1 ;;
    knot | knot-signed) /usr/sbin/knotd -V | sed -n 's/.*version //p' ;;
    nsd) /usr/sbin/nsd -v 2>&1 | sed -n 's/^NSD version //p' ;;
    gdnsd) /usr/sbin/gdnsd --help 2>&1 | sed -n 's/^gdnsd version \([^ ]*\).*/\1/p' | head -n 1 ;;
  esac
}

mix_label() {
  case $1 in
    a) echo "A" ;; mixed) echo "mixed" ;; a+edns) echo "A +EDNS0" ;; mixed+edns) echo "mixed +EDNS0" ;;
    a+do) echo "A +DO" ;; mixed+do) echo "mixed +DO" ;;
  esac
}

# write_queries writes the dnsperf input files: $work/q.a (api A) and
# $work/q.mixed (100 lines: 90 api A, 5 www AAAA, 5 non-existent names,
# spread evenly).
write_queries() {
  echo "api.$ZONE A" >"$work/q.a"
  local i
  for i in $(seq 1 100); do
    if [ $((i % 20)) = 10 ]; then
      echo "www.$ZONE AAAA"
    elif [ $((i % 20)) = 0 ]; then
      echo "nothere$((i / 20)).$ZONE A"
    else
      echo "api.$ZONE A"
    fi
  done >"$work/q.mixed"
}

build() {
  go build -o bin/demo-backend ./cmd/demo-backend
  if [ -n "${BENCH_SPDU_BIN:-}" ]; then
    SPDU_BIN=$BENCH_SPDU_BIN
  else
    go build -o bin/spdu-haproxy ./cmd/spdu-haproxy
    SPDU_BIN=bin/spdu-haproxy
  fi
}

# busy_ticks: CPU time the whole machine spent not idle, in clock ticks.
busy_ticks() {
  awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

start_servers() {
  start_site "$(server_port spdu-haproxy)"
  start_knot "$(server_port knot)"
  start_nsd "$(server_port nsd)"
  start_gdnsd "$(server_port gdnsd)"
}

# check_answers makes sure every server gives the same rcodes for the four
# kinds of query, and records reply sizes in $work/sizes.
check_answers() {
  local s p want got
  : >"$work/sizes"
  for s in $SERVERS; do
    p=$(server_port "$s")
    for want in "api.$ZONE A NOERROR" "www.$ZONE AAAA NOERROR" "nothere1.$ZONE A NXDOMAIN"; do
      set -- $want
      got=$(dns_status "$p" "$1" "$2")
      [ "$got" = "$3" ] || { echo "bench: $s answers $1 $2 with '$got', want $3" >&2; return 1; }
    done
    echo "$s $(msg_size "$p" "api.$ZONE" A +noedns) $(msg_size "$p" "api.$ZONE" A +edns=0 +nocookie)" \
      "$(msg_size "$p" "www.$ZONE" AAAA +noedns) $(msg_size "$p" "nothere1.$ZONE" A +noedns)" >>"$work/sizes"
  done
}

# one_run SERVER MIX ROUND: one dnsperf run, one line appended to
# $work/results (see dns_table).
one_run() {
  local server=$1 mix=$2 round=$3 pid port file edns=0 c0 c1 b0 b1 t r
  pid=$(server_pid "$server") port=$(server_port "$server")
  file=$work/q.${mix%+*}
  case $mix in *+edns) edns=1 ;; *+do) edns=do ;; esac
  if [ "$PIN" = 1 ]; then
    # Every thread of the server on core 1, whatever it did to itself.
    local cpus
    cpus=$(tree_cpus "$pid")
    if [ "$cpus" != 1 ]; then
      echo "bench: $server had threads on CPUs '$cpus'; moving them all to core 1" >&2
      grep -qx "$server $cpus" "$work/repinned" 2>/dev/null || echo "$server $cpus" >>"$work/repinned"
      pin_tree "$pid" 1
    fi
  fi
  c0=$(cpu_ticks "$pid") b0=$(busy_ticks)
  TIMEFORMAT='%U %S'
  t=$( { time run_dnsperf "$port" "$file" "$edns" "$work/dnsperf.out"; } 2>&1 ) || {
    echo "bench: dnsperf against $server failed:" >&2; cat "$work/dnsperf.out" >&2; return 1; }
  c1=$(cpu_ticks "$pid") b1=$(busy_ticks)
  kill -0 "$pid" 2>/dev/null || { echo "bench: $server died during the run" >&2; cat "$work/$server.log" >&2 || true; return 1; }
  r=$(parse_dnsperf "$work/dnsperf.out") || { echo "bench: cannot read dnsperf output:" >&2; cat "$work/dnsperf.out" >&2; return 1; }
  # The rest of the machine: busy time minus the server's and dnsperf's.
  local other dp
  dp=$(echo "$t" | awk -v hz="$CLK_TCK" '{print int(($1 + $2) * hz + 0.5)}')
  other=$((b1 - b0 - (c1 - c0) - dp))
  [ "$other" -ge 0 ] || other=0
  set -- $r
  echo "$server $mix $round $1 $2 $3 $4 $((c1 - c0)) $(hwm_kb "$pid") $other $dp" >>"$work/results"
  printf 'bench: round %s %-12s %-10s %8.0f qps %6.3f ms lost %-6s cpu %5.2f s\n' \
    "$round" "$mix" "$server" "$3" "$4" "$2" "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN {print t / hz}')"
}

part_dns() {
  local round mix server i machine
  wait_quiet
  machine=$(machine_line)
  write_queries
  check_answers
  : >"$work/repinned"
  # Warm-up, not recorded: one short run per server.
  for server in $SERVERS; do
    "${CORE0[@]}" dnsperf -s 127.0.0.1 -p "$(server_port "$server")" -d "$work/q.a" -l 1 $DNSPERF_OPTS >/dev/null 2>&1 || true
  done
  : >"$work/results"
  local list=($SERVERS)
  for round in $(seq 1 "$ROUNDS"); do
    for mix in $MIXES; do
      for i in 0 1 2 3; do
        server=${list[$(((i + round - 1) % 4))]}
        one_run "$server" "$mix" "$round"
      done
    done
  done
  {
    echo
    echo "## DNS load"
    echo
    echo "$machine"
    echo
    printf 'Each run: `dnsperf -s 127.0.0.1 -p PORT -d FILE -l %s %s` (plus `-e` for +EDNS0), ' "$SECONDS_PER_RUN" "$DNSPERF_OPTS"
    printf 'dnsperf %s; %s rounds; ' "$(dnsperf -h 2>&1 | sed -n 's/^Version //p')" "$ROUNDS"
    if [ "$PIN" = 1 ]; then echo 'servers pinned to core 1 (`taskset -c 1`, every thread checked before each run), dnsperf to core 0.'; else echo 'no pinning.'; fi
    echo
    repinned_note
    echo "spdu-haproxy: response rate limiting $SPDU_RRL.${BENCH_SPDU_BIN:+ Binary: \`$BENCH_SPDU_BIN\` (BENCH_SPDU_BIN), not built by the script.}"
    echo
    dns_table "$work/results"
    echo
    echo "Reply sizes in bytes (\`dig +noedns\`; EDNS0 with \`+edns=0 +nocookie\`):"
    echo
    sizes_table "$work/sizes"
    echo
    echo "Command: \`BENCH_SECONDS=$SECONDS_PER_RUN BENCH_ROUNDS=$ROUNDS scripts/bench.sh dns\`."
    echo
  } >"$work/dns.md"
  write_doc "$OUT" dns "$work/dns.md"
  echo "bench: wrote the DNS section of $OUT"
}

# check_signed makes sure both signed servers answer the queries of the
# signed runs alike and signed: rcodes, an RRSIG with the answer, NSEC
# records in negative answers, and delv (BIND's validator, with the
# server's own DNSKEY RRset as trust anchor) calling every answer fully
# validated; records reply sizes with the DO bit in $work/signed-sizes.
check_signed() {
  local s p want got out v
  : >"$work/signed-sizes"
  for s in $DNSSEC_SERVERS; do
    p=$(server_port "$s")
    v=n/a
    if [ "$s" != spdu-haproxy ]; then
      for want in "api.$ZONE A NOERROR RRSIG" "www.$ZONE AAAA NOERROR NSEC" "nothere1.$ZONE A NXDOMAIN NSEC"; do
        set -- $want
        out=$(dig @127.0.0.1 -p "$p" +norec +time=1 +tries=1 +dnssec "$1" "$2" 2>/dev/null)
        got=$(echo "$out" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
        [ "$got" = "$3" ] || { echo "bench: $s answers $1 $2 +dnssec with '$got', want $3" >&2; return 1; }
        echo "$out" | grep -v '^;' | awk -v t="$4" '$4 == t {f = 1} END {exit !f}' ||
          { echo "bench: $s answers $1 $2 +dnssec without $4:" >&2; echo "$out" >&2; return 1; }
      done
      v=$(delv_check "$p")
    fi
    echo "$s $(msg_size "$p" "api.$ZONE" A +dnssec +nocookie) $(msg_size "$p" "www.$ZONE" AAAA +dnssec +nocookie)" \
      "$(msg_size "$p" "nothere1.$ZONE" A +dnssec +nocookie) $(msg_size "$p" "$ZONE" DNSKEY +dnssec +nocookie) $v" >>"$work/signed-sizes"
  done
}

# delv_check PORT: "yes" when delv, with the DNSKEY RRset the server at PORT
# serves as its trust anchor, calls api A, www AAAA (NODATA) and nothere1 A
# (NXDOMAIN) fully validated; "no" otherwise, "n/a" without delv.
delv_check() {
  local port=$1 anchors=$work/anchors.$1 q out
  command -v delv >/dev/null || { echo n/a; return 0; }
  {
    echo "trust-anchors {"
    dig @127.0.0.1 -p "$port" +norec +short "$ZONE" DNSKEY |
      awk -v z="$ZONE." '{k = ""; for (i = 4; i <= NF; i++) k = k $i; printf "  \"%s\" static-key %s %s %s \"%s\";\n", z, $1, $2, $3, k}'
    echo "};"
  } >"$anchors"
  for q in "api.$ZONE A" "www.$ZONE AAAA" "nothere1.$ZONE A"; do
    set -- $q
    out=$(delv @127.0.0.1 -p "$port" -a "$anchors" +root="$ZONE" "$1" "$2" 2>&1)
    echo "$out" | grep -q "fully validated" || { echo "bench: delv $1 $2 at port $port:" >&2; echo "$out" >&2; echo no; return 0; }
  done
  echo yes
}

# part_dnssec runs the signed load: the dnsperf runs with the DO bit against
# spdu-haproxy unsigned (the daemon of the dns part), spdu-haproxy signed
# and Knot signed; and writes the dnssec section of $OUT, its table and the
# Go benchmarks of dnssec_go (run earlier, before any server started).
part_dnssec() {
  local round mix server i machine
  start_spdu_signed "$(server_port spdu-signed)"
  start_knot_signed "$(server_port knot-signed)"
  echo "bench: both signed servers answer"
  wait_quiet
  machine=$(machine_line)
  write_queries
  check_signed
  : >"$work/repinned"
  for server in $DNSSEC_SERVERS; do
    "${CORE0[@]}" dnsperf -s 127.0.0.1 -p "$(server_port "$server")" -d "$work/q.a" -D -l 1 $DNSPERF_OPTS >/dev/null 2>&1 || true
  done
  local list=($DNSSEC_SERVERS) n
  n=${#list[@]}
  for round in $(seq 1 "$ROUNDS"); do
    for mix in $DNSSEC_MIXES; do
      for i in $(seq 0 $((n - 1))); do
        server=${list[$(((i + round - 1) % n))]}
        one_run "$server" "$mix" "$round"
      done
    done
  done
  # one_run appends to $work/results.
  grep -E '^(spdu-haproxy|spdu-signed|knot-signed) (a|mixed)\+do ' "$work/results" >"$work/dnssec-results"
  {
    echo "$machine"
    echo
    printf 'Each run: `dnsperf -s 127.0.0.1 -p PORT -d FILE -l %s %s -D` (the DNSSEC OK bit, with EDNS0), ' "$SECONDS_PER_RUN" "$DNSPERF_OPTS"
    printf 'dnsperf %s; %s rounds; the mixes of the DNS load section; ' "$(dnsperf -h 2>&1 | sed -n 's/^Version //p')" "$ROUNDS"
    if [ "$PIN" = 1 ]; then echo 'pinning as there.'; else echo 'no pinning.'; fi
    echo
    repinned_note
    echo "Servers: \`spdu-haproxy\` is the unsigned daemon of the DNS load section (DO queries to an unsigned zone get the unsigned answers); \`spdu-signed\` is a second daemon behind the same site with the same configuration plus \`[dnssec] keys\` (one ECDSAP256SHA256 key from \`spdu-haproxy keygen\`), answering DO queries with RRSIGs and NSEC proofs; \`knot-signed\` is Knot with \`dnssec-signing: on\` (automatic policy: one ECDSAP256SHA256 CSK, NSEC). spdu-haproxy: response rate limiting $SPDU_RRL."
    echo
    dnssec_table "$work/dnssec-results"
    echo
    echo "Reply sizes in bytes with the DO bit (\`dig +dnssec +nocookie\`), and whether \`delv\` (BIND $(delv -v 2>&1 | sed -n 's/^delv \([^ ]*\).*/\1/p' | head -n 1), the server's DNSKEY RRset as trust anchor) fully validates api A, www AAAA and nothere1 A:"
    echo
    signed_sizes_table "$work/signed-sizes"
    echo
    echo "Command: \`${BENCH_QUIET:+BENCH_QUIET=$BENCH_QUIET }BENCH_SECONDS=$SECONDS_PER_RUN BENCH_ROUNDS=$ROUNDS scripts/bench.sh dnssec\` (also part of \`all\`)."
    echo
  } >"$work/dnssec-load.md"
  {
    echo
    echo "## DNSSEC"
    echo
    echo "### Signed load"
    echo
    cat "$work/dnssec-load.md"
    echo "Targets (issue 13): spdu-signed at least 0.9 of spdu-haproxy unsigned and at least 1.0 of knot-signed, in queries / CPU-s."
    echo
    cat "$work/dnssec-go.md"
  } >"$work/dnssec.md"
  write_doc "$OUT" dnssec "$work/dnssec.md"
  echo "bench: wrote the DNSSEC section of $OUT"
}

# dnssec_go runs the Go benchmarks of signing and of signed answers, before
# any server starts (a quiet machine; the load average at start is in the
# machine line), into $work/dnssec-go.md for part_dnssec.
dnssec_go() {
  local machine
  wait_quiet
  machine=$(machine_line)
  echo "bench: go test ./internal/dnsserve -run '^\$' -bench '^Benchmark(SignSwitch|RespondSigned|Respond)\$' -benchtime $GO_BENCHTIME"
  go test ./internal/dnsserve -run '^$' -bench '^Benchmark(SignSwitch|RespondSigned|Respond)$' -benchtime "$GO_BENCHTIME" -count 1 2>&1 | tee "$work/signgo.out"
  grep -q '^ok' "$work/signgo.out" || { echo "bench: the signing benchmarks failed" >&2; return 1; }
  {
    echo "### Signing and signed answers in process"
    echo
    echo "$machine"
    echo
    echo "\`go test ./internal/dnsserve -run '^\$' -bench '^Benchmark(SignSwitch|RespondSigned|Respond)\$' -benchtime $GO_BENCHTIME -count 1\`, Go $(go env GOVERSION | sed 's/^go//')."
    echo
    echo "Re-signing at a state switch (\`BenchmarkSignSwitch\`): a zone of 10 service names, each with an A and an AAAA record, in pool mode with 3 peers (four sites, one IPv4 and one IPv6 address each, 64 orderings: 24 distinct of four sites, 6 of three), one own key and the 3 peers' public keys in the DNSKEY RRset. Each op is one \`SetAnswers\` whole (new serial, signatures, every answer precomputed in wire format, plain and signed) at a switch: one site leaves the answer, then comes back, alternating. \`cold\` empties the signature cache first, as at start-up (every RRset signed); \`unsigned\` is the same switch without DNSSEC. Target (issue 13): under 10 ms."
    echo
    switch_table "$work/signgo.out"
    echo
    echo "Per query (\`BenchmarkRespondSigned\`, and the unsigned \`BenchmarkRespond\` for comparison): bytes in, bytes out, short of the socket; rate limiting off. \`self\` is the test zone in self mode (api A with two addresses, one key), \`pool\` the switch benchmark's zone with four sites (four keys in the DNSKEY RRset). \`+DO\` queries get RRSIGs and, for NODATA (TXT) and NXDOMAIN, the NSEC proof; \`A+edns\` is the same A query without DO to the signed zone."
    echo
    respond_table "$work/signgo.out"
    echo
  } >"$work/dnssec-go.md"
}

part_idle() {
  local c0 c1 h0 h1 pct hpct rss machine
  wait_quiet
  machine=$(machine_line)
  sleep 2 # let the site settle after start-up
  c0=$(cpu_ticks "$SPDU_PID") h0=$(cpu_ticks "$HAPROXY_PID")
  sleep "$IDLE_SECONDS"
  c1=$(cpu_ticks "$SPDU_PID") h1=$(cpu_ticks "$HAPROXY_PID")
  pct=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v s="$IDLE_SECONDS" 'BEGIN {printf "%.2f", 100 * t / hz / s}')
  hpct=$(awk -v t=$((h1 - h0)) -v hz="$CLK_TCK" -v s="$IDLE_SECONDS" 'BEGIN {printf "%.2f", 100 * t / hz / s}')
  rss=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$SPDU_PID/status")
  echo "bench: idle: spdu-haproxy $pct% of one core, HAProxy $hpct%"
  {
    echo
    echo "## Idle"
    echo
    echo "$machine"
    echo
    echo "spdu-haproxy serving the zone with no queries, polling HAProxy (5 servers, agent checks every 1 s) with the default \`poll_interval\` of 500 ms, over $IDLE_SECONDS s (\`BENCH_IDLE_SECONDS=$IDLE_SECONDS scripts/bench.sh idle\`):"
    echo
    echo "| process | CPU time | % of one core | RSS MiB |"
    echo "| --- | ---: | ---: | ---: |"
    printf '| spdu-haproxy | %s s | %s | %s |\n' "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN {print t / hz}')" "$pct" "$rss"
    printf '| HAProxy (whole process: checks, agent checks, the polls it answers) | %s s | %s | %s |\n' \
      "$(awk -v t=$((h1 - h0)) -v hz="$CLK_TCK" 'BEGIN {print t / hz}')" "$hpct" \
      "$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$HAPROXY_PID/status")"
    echo
    echo "Target (issue 4): spdu-haproxy under 1% of one core. CPU times have a resolution of $((1000 / CLK_TCK)) ms."
    echo
  } >"$work/idle.md"
  write_doc "$OUT" idle "$work/idle.md"
  echo "bench: wrote the idle section of $OUT"
}

part_poll() {
  local machine
  wait_quiet
  machine=$(machine_line)
  echo "bench: go test ./internal/bench -run '^\$' -bench PollCost (about 30 s)"
  go test ./internal/bench -run '^$' -bench PollCost -benchtime 1s -count 1 2>&1 | tee "$work/poll.out"
  grep -q '^ok' "$work/poll.out" || { echo "bench: the poll benchmark failed" >&2; return 1; }
  {
    echo
    echo "## Poll cost"
    echo
    echo "$machine"
    echo
    echo "One poll of backend \`api\` with N servers (plus one backup), HAProxy $(/usr/sbin/haproxy -v | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p'); \`go test ./internal/bench -run '^\$' -bench PollCost -benchtime 1s -count 1\` (\`scripts/bench.sh poll\`). Paths: \`spdu\` is what the daemon does each poll (ShowStat over the socket, parse, Tracker, Weigher); \`parse\` is ParseStat alone on one dump; \`client-native\` is client-native v5's \`GetStats\`."
    echo
    poll_table "$work/poll.out"
    echo
    echo "Target (issue 4): 10,000 servers in under 50 ms of our CPU per poll. The daemon's default \`poll_timeout\` is half of \`poll_interval\`, 250 ms: a poll whose wall time exceeds it fails."
    echo
  } >"$work/poll.md"
  write_doc "$OUT" poll "$work/poll.md"
  echo "bench: wrote the poll section of $OUT"
}

case $part in
  poll)
    install_missing
    part_poll
    ;;
  dnssec)
    install_missing
    build
    dnssec_go
    : >"$work/results"
    start_site "$(server_port spdu-haproxy)"
    echo "bench: spdu-haproxy answers; work dir $work"
    part_dnssec
    stop_all
    ;;
  *)
    install_missing
    build
    if [ "$part" = all ]; then dnssec_go; fi
    start_servers
    echo "bench: all four servers answer; work dir $work"
    [ "$part" = dns ] || part_idle
    [ "$part" = idle ] || part_dns
    if [ "$part" = all ]; then part_dnssec; fi
    stop_all
    [ "$part" = all ] && part_poll
    ;;
esac
echo "bench: done; see $OUT"
