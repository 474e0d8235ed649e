// Package e2e holds spdu-haproxy's end-to-end failure tests: the real daemon
// binary, real HAProxy processes, real HTTP backends and a real recursive
// resolver (Debian's unbound), all on loopback addresses, with faults
// injected on purpose. It has no non-test code beyond this comment.
package e2e
