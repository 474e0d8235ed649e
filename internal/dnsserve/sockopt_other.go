//go:build !linux

package dnsserve

import "syscall"

// udpControl returns nil where SO_REUSEPORT load balancing and destination
// address reporting are not used: Listen then binds a single UDP socket per
// address, and a wildcard socket replies from the address the routing
// table picks.
func udpControl(_, _ bool) func(network, address string, c syscall.RawConn) error { return nil }

// forceReadBuffer is not available outside Linux.
func forceReadBuffer(syscall.RawConn, int) bool { return false }

// reusePortSupported reports whether several UDP sockets may share an
// address on this system.
const reusePortSupported = false

// pktinfoSupported reports whether wildcard UDP sockets learn each
// datagram's destination address and reply from it here.
const pktinfoSupported = false

// appendReplySource returns dst emptied: no destination address is
// reported here.
func appendReplySource(dst, _ []byte) []byte { return dst[:0] }
