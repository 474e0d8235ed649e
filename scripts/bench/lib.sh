# shellcheck shell=bash
# Helpers of scripts/bench.sh: starting and stopping background processes,
# reading a process tree's CPU time and peak memory from /proc, waiting for a
# nameserver to answer, and running dnsperf. Sourced, not run.

# pids holds every process bench.sh started; stop_all ends them.
pids=()

# start_bg LOG CMD...: runs CMD in the background with its output in LOG and
# sets LAST_PID (a subshell cannot set variables in the caller, so callers
# read LAST_PID right after).
start_bg() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  LAST_PID=$!
  pids+=("$LAST_PID")
}

# stop_all sends SIGTERM to every started process, waits up to 5 s for them
# to exit, then SIGKILLs what is left. Only our own pids, never by name.
stop_all() {
  local p deadline
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  deadline=$(( $(date +%s) + 5 ))
  for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  pids=()
}

# tree_pids PID: PID and all its descendants, one per line.
tree_pids() {
  local c
  echo "$1"
  for c in $(pgrep -P "$1" 2>/dev/null); do tree_pids "$c"; done
}

# pin_tree PID CORE: moves every thread of PID and its descendants to CORE.
# taskset at exec is not enough: a server may set its threads' affinity
# itself once started (Knot 3 pins each UDP worker to a core of its own
# choosing: core 0 on two cores, where dnsperf runs).
pin_tree() {
  local p t
  for p in $(tree_pids "$1"); do
    for t in /proc/"$p"/task/*; do taskset -pc "$2" "${t##*/}" >/dev/null 2>&1 || true; done
  done
}

# tree_cpus PID: the distinct CPU lists (Cpus_allowed_list) of the threads
# of PID and its descendants, space separated.
tree_cpus() {
  local p
  for p in $(tree_pids "$1"); do
    cat /proc/"$p"/task/*/status 2>/dev/null
  done | awk '/^Cpus_allowed_list:/ {print $2}' | sort -u | paste -sd' ' -
}

# cpu_ticks PID: user+system CPU time of PID and its descendants, in clock
# ticks (getconf CLK_TCK per second), from /proc/PID/stat fields utime and
# stime (the process's threads included).
cpu_ticks() {
  local p sum=0 t
  for p in $(tree_pids "$1"); do
    # Drop "pid (comm) " first: comm may hold spaces. utime and stime are
    # then fields 12 and 13.
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    sum=$(( sum + ${t:-0} ))
  done
  echo "$sum"
}

# hwm_kb PID: peak resident memory (VmHWM) of PID plus that of each
# descendant, in KiB. For a multi-process server (NSD) this sum counts
# shared pages once per process, so it is an upper bound.
hwm_kb() {
  local p sum=0 k
  for p in $(tree_pids "$1"); do
    k=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null) || k=0
    sum=$(( sum + ${k:-0} ))
  done
  echo "$sum"
}

# CORE0 and CORE1 are command prefixes that pin a command to core 0 (load
# generator, HAProxy, demo backends) or core 1 (the server under test) when
# the machine has two cores or more and BENCH_PIN is not 0; empty otherwise.
# taskset execs the command, so $! is the command's own pid.
set_pinning() {
  CORE0=() CORE1=()
  if [ "$PIN" = 1 ]; then CORE0=(taskset -c 0) CORE1=(taskset -c 1); fi
}

now_ms() { date +%s%3N; }

# wait_quiet: with BENCH_QUIET set (a load average, such as 0.5), waits
# until the 1-minute load average is below it, polling every 30 s, for at
# most BENCH_QUIET_WAIT seconds (default 1200; then it goes on and says
# so). The load average lags: it still counts the previous part's load for
# a minute or two. Without BENCH_QUIET it returns at once.
wait_quiet() {
  [ -n "${BENCH_QUIET:-}" ] || return 0
  local deadline=$(( $(date +%s) + ${BENCH_QUIET_WAIT:-1200} )) left
  until awk -v max="$BENCH_QUIET" '{exit !($1 < max)}' /proc/loadavg; do
    left=$(( deadline - $(date +%s) ))
    if [ "$left" -le 0 ]; then
      echo "bench: load average $(cut -d' ' -f1 /proc/loadavg) still not below $BENCH_QUIET; measuring anyway" >&2
      return 0
    fi
    echo "bench: load average $(cut -d' ' -f1 /proc/loadavg), waiting for it to drop below $BENCH_QUIET"
    sleep $(( left < 30 ? left : 30 ))
  done
}

# dns_status PORT NAME TYPE: the rcode dig gets from 127.0.0.1:PORT, or
# nothing when no answer came.
dns_status() {
  dig @127.0.0.1 -p "$1" +norec +time=1 +tries=1 "$2" "$3" 2>/dev/null |
    sed -n 's/.*status: \([A-Z]*\),.*/\1/p'
}

# wait_noerror PORT SECONDS WHAT PID: polls every 100 ms until api.$ZONE A
# answers NOERROR, and fails after SECONDS or when PID has exited.
wait_noerror() {
  local port=$1 deadline=$(( $(now_ms) + $2 * 1000 )) what=$3 pid=$4
  until [ "$(dns_status "$port" "api.$ZONE" A)" = NOERROR ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench: $what exited before answering; its log:" >&2
      cat "$work/$what.log" >&2
      return 1
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      echo "bench: $what did not answer NOERROR for api.$ZONE within $2 s; its log:" >&2
      tail -n 30 "$work/$what.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

# msg_size PORT NAME TYPE [DIG_OPTS...]: size in bytes of the reply.
msg_size() {
  local port=$1 name=$2 type=$3; shift 3
  dig @127.0.0.1 -p "$port" +norec +time=1 +tries=1 "$@" "$name" "$type" 2>/dev/null |
    sed -n 's/.*MSG SIZE  rcvd: \([0-9]*\).*/\1/p'
}

# run_dnsperf PORT QUERYFILE EDNS OUT: one dnsperf run of $SECONDS seconds
# with the shared settings $DNSPERF_OPTS, pinned to core 0; its output in OUT.
# EDNS is 0 (no OPT record), 1 (-e: EDNS0) or do (-D: EDNS0 with the DNSSEC
# OK bit).
run_dnsperf() {
  local port=$1 file=$2 edns=$3 out=$4 e=()
  [ "$edns" = 1 ] && e=(-e)
  [ "$edns" = do ] && e=(-D)
  # shellcheck disable=SC2086 # DNSPERF_OPTS is a list of options
  "${CORE0[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$SECONDS_PER_RUN" $DNSPERF_OPTS "${e[@]}" >"$out" 2>&1
}

# parse_dnsperf OUT: "completed lost qps latency_ms" from a dnsperf output.
parse_dnsperf() {
  awk '
    /Queries completed:/ {c = $3}
    /Queries lost:/ {l = $3}
    /Queries per second:/ {q = $4}
    /Average Latency \(s\):/ {a = $4 * 1000}
    END {
      if (c == "" || q == "") exit 1
      printf "%s %s %s %.3f\n", c, l, q, a
    }' "$1"
}
