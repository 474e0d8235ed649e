// Package packaging tests what spdu-haproxy ships beside its binary: the
// .deb and .rpm packages that `make package` builds (lintian, their files,
// owners and modes, the packaged configuration, unit and man page, and the
// maintainer scripts installing, upgrading, removing and purging in a
// throwaway overlay of this machine's root), and the monitoring examples
// (the Grafana dashboard and the Prometheus rules, checked with promtool and
// against the /metrics of a real daemon next to a real HAProxy). It has no
// non-test code beyond this comment; the packaging itself lives in
// packaging/, scripts/package.sh and tools/.
package packaging
