package dnsserve

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// maxUDPErrors is how many read errors in a row make a UDP reader give up
// and fail Run; a single error (an ICMP report, a signal) is only logged.
const maxUDPErrors = 100

// serveUDP reads queries from c and answers each before reading the next,
// until c is closed. One goroutine runs it per socket; the buffers are its
// own, so the hot path allocates nothing. On a wildcard socket each reply
// leaves from the address its query was sent to (see dstaddr.go).
func (s *Server) serveUDP(c *net.UDPConn) error {
	buf := make([]byte, udpReadSize)
	out := make([]byte, 0, maxTCPReply)
	fromDst := repliesFromDst(c)
	var oob, src ctlBuf
	errs := 0
	for {
		var n int
		var from netip.AddrPort
		var err error
		var ctl []byte // the reply's control message, if any
		if fromDst {
			var oobn int
			n, oobn, _, from, err = c.ReadMsgUDPAddrPort(buf, oob.bytes())
			if err == nil {
				ctl = appendReplySource(src.bytes()[:0], oob.bytes()[:oobn])
			}
		} else {
			n, from, err = c.ReadFromUDPAddrPort(buf)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errs++; errs >= maxUDPErrors {
				return fmt.Errorf("dnsserve: read udp %s: %w", c.LocalAddr(), err)
			}
			s.log.Warn().Err(err).Stringer("addr", c.LocalAddr()).Msg("read udp")
			continue
		}
		errs = 0
		reply := s.respond(out, buf[:n], from, false)
		if reply == nil {
			continue
		}
		if len(ctl) > 0 {
			_, _, err = c.WriteMsgUDPAddrPort(reply, ctl, from)
		} else {
			_, err = c.WriteToUDPAddrPort(reply, from)
		}
		if err != nil {
			if ev := s.log.Debug(); ev.Enabled() {
				ev.Err(err).Stringer("remote", from).Msg("write udp reply")
			}
		}
	}
}
