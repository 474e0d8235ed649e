#!/usr/bin/env bash
# Installs, from Debian's packages and only when missing, everything the
# tests, the demo and the packaging need (make deps, .ci/run). Uses sudo
# unless run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have haproxy        || need+=(haproxy)          # the real HAProxy of every test
have dig            || need+=(bind9-dnsutils)   # the demo; delv (DNSSEC)
have curl           || need+=(curl)             # the demo
have knotd          || need+=(knot)             # differential DNS test, local root
have unbound        || need+=(unbound)          # resolvers
have named          || need+=(bind9)            # resolvers
have pdns_recursor  || need+=(pdns-recursor)    # resolvers
have kresd          || need+=(knot-resolver)    # resolvers
have dnssec-verify  || need+=(bind9-utils)      # DNSSEC validators
have kzonecheck     || need+=(knot-dnssecutils) # DNSSEC validators
have systemd-analyze || need+=(systemd)         # unit verification
# Without recommends: prometheus (for promtool) would bring a node exporter.
lean=()
have lintian  || lean+=(lintian)
have rpm      || lean+=(rpm)
have promtool || lean+=(prometheus)
have man      || lean+=(man-db)
have adduser  || lean+=(adduser)

if [ ${#need[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ]; then
  echo "installing: ${need[*]} ${lean[*]}"
  $sudo apt-get update -qq
  [ ${#need[@]} -eq 0 ] || $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  [ ${#lean[@]} -eq 0 ] || $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi
