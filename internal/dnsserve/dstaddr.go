package dnsserve

import (
	"net"
	"net/netip"
	"unsafe"
)

// Replying from the address a query was sent to. A UDP socket bound to a
// wildcard address (0.0.0.0, ::) receives datagrams sent to any address of
// the host, but a reply sent with plain sendto(2) leaves from whatever
// source address the routing table picks for the client, which need not be
// the one the client asked: a query to 192.0.2.53 (a virtual IP, a second
// address) answered from 192.0.2.10 is dropped by the client. Knot DNS and
// NSD ask the kernel for each datagram's destination address (IP_PKTINFO
// in ip(7), IPV6_RECVPKTINFO in ipv6(7) and RFC 3542 section 6.1) and send
// the reply with that address as its source in the same control message;
// so do serveUDP and serveUDPBatch, for wildcard sockets only: a socket
// bound to one address replies from it anyway, and skips the cost.

// ctlBuf is room for the control messages of one datagram: one
// IP_PKTINFO or IPV6_PKTINFO message (32 or 40 bytes on 64-bit Linux)
// with room to spare. uint64 words keep it aligned for struct cmsghdr.
type ctlBuf [8]uint64

// bytes returns b as the byte slice recvmsg(2) and sendmsg(2) take.
func (b *ctlBuf) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), unsafe.Sizeof(*b))
}

// repliesFromDst reports whether replies on c must name their source
// address: c is bound to a wildcard address and the system reports
// destination addresses.
func repliesFromDst(c *net.UDPConn) bool {
	a, ok := c.LocalAddr().(*net.UDPAddr)
	return pktinfoSupported && ok && a.IP.IsUnspecified()
}

// listenNetworks returns the networks to bind host on: "udp4" and "tcp4"
// for an IPv4 address (IPv4-mapped included), "udp6" and "tcp6" for an
// IPv6 one, which makes Go set IPV6_V6ONLY, and "udp" and "tcp" (one
// dual-stack socket where the system has IPv6) for an empty host. Without
// the suffix Go binds "0.0.0.0" as a dual-stack "[::]" socket, which is
// why "0.0.0.0:53" and "[::]:53" used to collide.
func listenNetworks(host string) (udp, tcp string) {
	a, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return "udp", "tcp"
	case a.Unmap().Is4():
		return "udp4", "tcp4"
	default:
		return "udp6", "tcp6"
	}
}

// isWildcardHost reports whether host, as in a Listen address, is empty or
// an unspecified address (0.0.0.0, ::): a socket that receives datagrams
// sent to any of the host's addresses.
func isWildcardHost(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsUnspecified()
}
