package dnsserve

import (
	"errors"
	"fmt"
	"net"
)

// maxUDPErrors is how many read errors in a row make a UDP reader give up
// and fail Run; a single error (an ICMP report, a signal) is only logged.
const maxUDPErrors = 100

// serveUDP reads queries from c and answers each before reading the next,
// until c is closed. One goroutine runs it per socket; the buffers are its
// own, so the hot path allocates nothing.
func (s *Server) serveUDP(c *net.UDPConn) error {
	buf := make([]byte, udpReadSize)
	out := make([]byte, 0, maxTCPReply)
	errs := 0
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
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
		if _, err := c.WriteToUDPAddrPort(reply, from); err != nil {
			if ev := s.log.Debug(); ev.Enabled() {
				ev.Err(err).Stringer("remote", from).Msg("write udp reply")
			}
		}
	}
}
