package dnsserve

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpControl returns the net.ListenConfig Control function for a UDP
// socket: SO_REUSEPORT when reuse is set, so that several sockets share
// one address and the kernel spreads datagrams over them by flow, and
// destination address reporting when pktinfo is set (a wildcard address):
// IP_PKTINFO (ip(7)) and, on an IPv6 socket, IPV6_RECVPKTINFO (ipv6(7)).
// On a dual-stack socket (":53") IP_PKTINFO reports the destination of
// IPv4 datagrams.
func udpControl(reuse, pktinfo bool) func(network, address string, c syscall.RawConn) error {
	if !reuse && !pktinfo {
		return nil
	}
	return func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if reuse {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
					return
				}
			}
			if !pktinfo {
				return
			}
			v4err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			if network == "udp4" {
				serr = v4err
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}
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

// pktinfoSupported reports whether wildcard UDP sockets learn each
// datagram's destination address and reply from it here.
const pktinfoSupported = true

// appendReplySource writes into dst (at least 40 bytes, aligned for struct
// cmsghdr) the control message that makes a reply leave from the address
// the query was sent to, read from the query's control messages oob, and
// returns it; empty when oob reports no destination. For IPv4 that is
// IP_PKTINFO with ipi_spec_dst set to the query's destination; for IPv6,
// IPV6_PKTINFO with ipi6_addr. The interface index is cleared so that the
// routing table still chooses the outgoing interface, as Knot DNS does
// (udp_pktinfo_handle). It does not allocate.
func appendReplySource(dst, oob []byte) []byte {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < hdr || n > len(oob) {
			break
		}
		data := oob[hdr:n]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			in := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			out := putCmsg(dst, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
			if out != nil {
				(*unix.Inet4Pktinfo)(unsafe.Pointer(&out[hdr])).Spec_dst = in.Addr
			}
			return out
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			in := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			out := putCmsg(dst, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
			if out != nil {
				(*unix.Inet6Pktinfo)(unsafe.Pointer(&out[hdr])).Addr = in.Addr
			}
			return out
		}
		oob = oob[min(unix.CmsgSpace(n-hdr), len(oob)):]
	}
	return dst[:0]
}

// putCmsg zeroes dst and writes in it the header of one control message of
// the given level and type with datalen bytes of data, and returns the
// message (header and data), or nil if dst is too short.
func putCmsg(dst []byte, level, typ int32, datalen int) []byte {
	n := unix.CmsgSpace(datalen)
	if cap(dst) < n {
		return nil
	}
	dst = dst[:n]
	clear(dst)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&dst[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(datalen))
	return dst
}
