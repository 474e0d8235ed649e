#!/usr/bin/env bash
# Builds the spdu-haproxy .deb and .rpm packages into $DIST (default dist/)
# with nfpm and go-md2man, run as Go tools pinned in tools/go.mod (nothing is
# downloaded but Go modules). Run it with `make package`.
#
#   VERSION     package version (default: from git, e.g. 0.0.0~git20261202.9a5abed);
#               the binary prints it in `spdu-haproxy version`
#   ARCH        Go architecture (default: go env GOARCH)
#   DIST        output directory (default: dist)
#   MAINTAINER  "Name <address>" of the packages' Maintainer field
#
# The packages' contents are declared in packaging/nfpm.yaml; this script
# builds the files that are not in the repository as they are (binary, man
# page, packaged unit, copyright and changelog) into a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

GO=${GO:-go}
DIST=${DIST:-dist}
ARCH=${ARCH:-$($GO env GOARCH)}
MAINTAINER=${MAINTAINER:-spdu-haproxy maintainers <spdu-haproxy@users.noreply.github.com>}
tool() { $GO tool -modfile=tools/go.mod "$@"; }

# Reproducible: every timestamp is the commit's.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

default_version() {
  local tag sha day
  if tag=$(git describe --tags --match 'v[0-9]*' --abbrev=7 2>/dev/null); then
    # v1.2.3 -> 1.2.3; v1.2.3-4-gabc1234 -> 1.2.3+git4.abc1234
    tag=${tag#v}
    if [[ $tag =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
      echo "${BASH_REMATCH[1]}+git${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
    else
      echo "$tag"
    fi
    return
  fi
  sha=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
  day=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d)
  echo "0.0.0~git$day.$sha"
}
VERSION=${VERSION:-$(default_version)}
# Valid as a Debian upstream version and an RPM version: no '-' (the package
# release follows it), starts with a digit.
if ! [[ $VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
  echo "package.sh: VERSION '$VERSION' must start with a digit and hold only letters, digits, '.', '+' and '~'" >&2
  exit 2
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/spdu-package.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
export VERSION ARCH STAGE MAINTAINER SOURCE_DATE_EPOCH

# The binary: position-independent (ASLR), without C (no shared library
# dependencies), stripped, with the package version stamped in.
CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH $GO build -trimpath -buildvcs=false -buildmode=pie \
  -ldflags "-s -w -X main.version=$VERSION" -o "$STAGE/spdu-haproxy" ./cmd/spdu-haproxy

# The man page from its Markdown source, compressed as Debian wants it.
tool go-md2man -in docs/spdu-haproxy.8.md -out "$STAGE/spdu-haproxy.8"
gzip -9n "$STAGE/spdu-haproxy.8"

# The unit: the example one with the packaged binary's path, and the
# manual first in Documentation=. Its header (how to install it by hand)
# does not apply to the package.
{
  echo "# systemd unit of spdu-haproxy, installed by its package. Override settings"
  echo "# with: systemctl edit spdu-haproxy"
  sed -e '1,/^\[Unit\]$/{/^#/d}' \
      -e 's#/usr/local/bin/spdu-haproxy#/usr/bin/spdu-haproxy#g' \
      -e 's#^Documentation=#Documentation=man:spdu-haproxy(8) #' \
      examples/systemd/spdu-haproxy.service
} >"$STAGE/spdu-haproxy.service"
if grep -q /usr/local "$STAGE/spdu-haproxy.service"; then
  echo "package.sh: the packaged unit still names /usr/local" >&2
  exit 1
fi

# /usr/share/doc/spdu-haproxy: README, examples, copyright.
install -d -m 0755 "$STAGE/doc"
install -m 0644 README.md "$STAGE/doc/README.md"
cp -R examples "$STAGE/doc/examples"
find "$STAGE/doc/examples" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
{
  cat packaging/copyright
  echo
  echo "Go modules compiled into /usr/bin/spdu-haproxy (each under its own"
  echo "license, found in its source):"
  $GO version -m "$STAGE/spdu-haproxy" | awk '$1 == "dep" { print "  " $2 " " $3 }'
} >"$STAGE/doc/copyright"

# Debian wants a changelog in its own format; this one points to git.
date_rfc2822=$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")
cat >"$STAGE/changelog.Debian" <<EOF
spdu-haproxy ($VERSION-1) unstable; urgency=medium

  * Built from the spdu-haproxy repository with \`make package\`.
    The changes are in the project's git history.

 -- $MAINTAINER  $date_rfc2822
EOF
gzip -9n "$STAGE/changelog.Debian"

mkdir -p "$DIST"
rm -f "$DIST"/spdu-haproxy_*.deb "$DIST"/spdu-haproxy-*.rpm
for packager in deb rpm; do
  tool nfpm package --config packaging/nfpm.yaml --packager "$packager" --target "$DIST/"
done
