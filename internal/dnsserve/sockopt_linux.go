package dnsserve

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort is a net.ListenConfig Control function that sets SO_REUSEPORT,
// so that several UDP sockets share one address and the kernel spreads
// datagrams over them by flow.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// forceReadBuffer asks for a receive buffer of n bytes beyond
// net.core.rmem_max with SO_RCVBUFFORCE, which needs CAP_NET_ADMIN. It
// reports whether that worked; without the capability the caller keeps
// what SetReadBuffer got.
func forceReadBuffer(c syscall.RawConn, n int) bool {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return false
	}
	return serr == nil
}

// reusePortSupported reports whether several UDP sockets may share an
// address on this system.
const reusePortSupported = true
