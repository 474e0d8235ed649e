//go:build !(linux && (amd64 || arm64))

package dnsserve

import "net"

// serveUDPBatch falls back to one datagram per system call where
// recvmmsg(2) batching is not built.
func (s *Server) serveUDPBatch(c *net.UDPConn) error { return s.serveUDP(c) }

// udpBatchSupported reports whether serveUDPBatch batches here.
const udpBatchSupported = false
