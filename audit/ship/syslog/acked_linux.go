package syslog

import (
	"crypto/tls"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// allAcked reports whether the receiver's TCP stack has acknowledged every
// byte written to c (TCP_INFO: nothing unacknowledged, nothing unsent).
func allAcked(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	acked := false
	_ = raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		acked = err == nil && info.Unacked == 0 && info.Notsent_bytes == 0
	})
	return acked
}
