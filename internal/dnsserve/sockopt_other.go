//go:build !linux

package dnsserve

import "syscall"

// reusePort does nothing where SO_REUSEPORT load balancing is not
// available; Listen then binds a single UDP socket per address.
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }

// forceReadBuffer is not available outside Linux.
func forceReadBuffer(syscall.RawConn, int) bool { return false }

// reusePortSupported reports whether several UDP sockets may share an
// address on this system.
const reusePortSupported = false
