#!/usr/bin/env bash
# Installs, from Debian's packages and only when missing, what a part of the
# project needs. Uses sudo unless run as root.
#
#   scripts/deps.sh [test]  everything the tests, the demo and the packaging
#                           need (the default: make deps, make test, .ci/run)
#   scripts/deps.sh demo    what scripts/demo.sh runs: HAProxy, dig, curl
#                           (make demo)
#   scripts/deps.sh bench   what scripts/bench.sh runs: dnsperf, Knot, NSD,
#                           gdnsd, HAProxy, dig and delv, pgrep
#
# Several groups may be given. The packages' own daemons are not wanted (the
# tests, the demo and the benchmark start their own processes with their own
# configurations): for every package installed here whose service starts on
# install (knot, named, unbound, pdns-recursor, kresd, prometheus, haproxy,
# nsd, gdnsd), the service is stopped and disabled again. Services of
# packages that were installed before are left alone.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(test)

need=() # installed with their recommends
lean=() # installed without: prometheus (for promtool) would bring a node exporter
# have COMMAND: an absolute path must be there (the daemons, which the tests
# and scripts run by their Debian path); a name may be anywhere on PATH.
have() {
  case $1 in
    /*) [ -x "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] ;;
  esac
}
# want LIST COMMAND PACKAGE: add PACKAGE to LIST (need or lean) when COMMAND
# is missing and PACKAGE is not in it yet.
want() {
  local -n list=$1
  have "$2" && return 0
  case " ${list[*]:-} " in *" $3 "*) return 0 ;; esac
  list+=("$3")
}

demo() {
  want need /usr/sbin/haproxy haproxy               # /usr/sbin/haproxy with examples/haproxy.cfg
  want need dig bind9-dnsutils                      # the zone's answers
  want need curl curl                               # through HAProxy
}

test_set() {
  demo                                              # the demo's; the real HAProxy of every test
  want need /usr/sbin/knotd knot                    # differential DNS test, local root
  want need /usr/sbin/unbound unbound               # resolvers
  want need /usr/sbin/named bind9                   # resolvers
  want need /usr/sbin/pdns_recursor pdns-recursor   # resolvers
  want need /usr/sbin/kresd knot-resolver           # resolvers
  want need delv bind9-dnsutils                     # DNSSEC validation
  want need dnssec-verify bind9-utils               # DNSSEC validators
  want need kzonecheck knot-dnssecutils             # DNSSEC validators
  want need systemd-analyze systemd                 # unit verification
  want lean lintian lintian                         # packaging
  want lean rpm rpm                                 # packaging
  want lean promtool prometheus                     # alert rules and dashboard queries
  want lean man man-db                              # the man page
  want lean adduser adduser                         # the .deb's maintainer scripts
}

bench() {
  want need dnsperf dnsperf                         # the load
  want need /usr/sbin/knotd knot                    # compared servers
  want need /usr/sbin/nsd nsd
  want need /usr/sbin/gdnsd gdnsd
  want need /usr/sbin/haproxy haproxy               # the local site
  want need dig bind9-dnsutils                      # reply sizes; delv validates
  want need delv bind9-dnsutils
  want need pgrep procps                            # process trees for CPU time
}

for g in "${groups[@]}"; do
  case $g in
    demo) demo ;;
    test) test_set ;;
    bench) bench ;;
    *) echo "usage: scripts/deps.sh [demo|test|bench]..." >&2; exit 2 ;;
  esac
done

[ ${#need[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ] || exit 0

echo "installing:" "${need[@]}" "${lean[@]}"
$sudo apt-get update -qq
[ ${#need[@]} -eq 0 ] || $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
[ ${#lean[@]} -eq 0 ] || $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null

# The services the packages just installed enable (and, under systemd,
# start): stop them and disable them, so that the host runs none of them and
# boots none of them. No test, demo or benchmark uses them.
units=()
for p in "${need[@]}" "${lean[@]}"; do
  case $p in
    haproxy) units+=(haproxy.service) ;;
    knot) units+=(knot.service) ;;
    unbound) units+=(unbound.service unbound-resolvconf.service) ;;
    bind9) units+=(named.service named-resolvconf.service) ;;
    pdns-recursor) units+=(pdns-recursor.service) ;;
    knot-resolver) units+=(kresd.target kres-cache-gc.service) ;;
    prometheus) units+=(prometheus.service) ;;
    nsd) units+=(nsd.service) ;;
    gdnsd) units+=(gdnsd.service) ;;
  esac
done
[ ${#units[@]} -gt 0 ] && command -v systemctl >/dev/null 2>&1 || exit 0
echo "stopping and disabling: ${units[*]}"
if [ -d /run/systemd/system ]; then
  # kresd runs as instances kresd@N of kresd.target.
  case " ${units[*]} " in *" kresd.target "*) $sudo systemctl stop 'kresd@*.service' >/dev/null 2>&1 || true ;; esac
  for u in "${units[@]}"; do $sudo systemctl disable --now "$u" >/dev/null 2>&1 || true; done
else
  # No running systemd (a container): nothing was started through it, but
  # the units are enabled for the next boot.
  for u in "${units[@]}"; do $sudo systemctl disable "$u" >/dev/null 2>&1 || true; done
fi
