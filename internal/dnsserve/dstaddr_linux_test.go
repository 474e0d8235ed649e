package dnsserve

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel would deliver it.
func cmsg(level, typ int32, data []byte) []byte {
	var b ctlBuf
	out := putCmsg(b.bytes()[:0], level, typ, len(data))
	copy(out[unix.CmsgLen(0):], data)
	return out
}

// TestAppendReplySource checks the control message built from the one
// received: the query's destination as the reply's source, the interface
// left to the routing table, nothing for anything else, and no
// allocation.
func TestAppendReplySource(t *testing.T) {
	in4 := unix.Inet4Pktinfo{Ifindex: 1, Spec_dst: [4]byte{127, 0, 0, 1}, Addr: [4]byte{127, 0, 0, 55}}
	in6 := unix.Inet6Pktinfo{Addr: [16]byte{15: 1}, Ifindex: 1}
	v4 := cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&in4)), unix.SizeofInet4Pktinfo))
	v6 := cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&in6)), unix.SizeofInet6Pktinfo))
	other := cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16))

	var dst ctlBuf
	got := appendReplySource(dst.bytes()[:0], append(append([]byte{}, other...), v4...))
	if len(got) != unix.CmsgSpace(unix.SizeofInet4Pktinfo) {
		t.Fatalf("IPv4: %d bytes; want one IP_PKTINFO message", len(got))
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&got[0]))
	p4 := (*unix.Inet4Pktinfo)(unsafe.Pointer(&got[unix.CmsgLen(0)]))
	if h.Level != unix.IPPROTO_IP || h.Type != unix.IP_PKTINFO || p4.Spec_dst != in4.Addr || p4.Ifindex != 0 || p4.Addr != [4]byte{} {
		t.Errorf("IPv4: level %d type %d %+v; want IP_PKTINFO with spec_dst 127.0.0.55, ifindex 0", h.Level, h.Type, *p4)
	}

	got = appendReplySource(dst.bytes()[:0], v6)
	h = (*unix.Cmsghdr)(unsafe.Pointer(&got[0]))
	p6 := (*unix.Inet6Pktinfo)(unsafe.Pointer(&got[unix.CmsgLen(0)]))
	if h.Level != unix.IPPROTO_IPV6 || h.Type != unix.IPV6_PKTINFO || p6.Addr != in6.Addr || p6.Ifindex != 0 {
		t.Errorf("IPv6: level %d type %d %+v; want IPV6_PKTINFO with addr ::1, ifindex 0", h.Level, h.Type, *p6)
	}

	for name, oob := range map[string][]byte{
		"none":      nil,
		"other":     other,
		"truncated": v4[:len(v4)-8],
		"short":     v4[:4],
	} {
		if got := appendReplySource(dst.bytes()[:0], oob); len(got) != 0 {
			t.Errorf("%s: %d bytes of control message; want none", name, len(got))
		}
	}
	if n := testing.AllocsPerRun(100, func() { appendReplySource(dst.bytes()[:0], v6) }); n != 0 {
		t.Errorf("appendReplySource allocates %v times; want 0", n)
	}
}
