package gossip

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// tcpRTOMaxMS is TCP_RTO_MAX_MS of linux/tcp.h (not yet in x/sys/unix).
const tcpRTOMaxMS = 44

// capRTO caps the retransmission timeout of the TCP socket fd; kernels
// before 6.15 refuse the option (ENOPROTOOPT).
func capRTO(fd int) error {
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, tcpRTOMaxMS, int(MaxRetransmitTimeout.Milliseconds()))
}

// capListenerRTO caps the retransmission timeout of the process's TCP
// listening sockets on the given ports, which accepted connections inherit.
// libp2p makes its listeners itself and hands out no file descriptor or
// socket option hook, so they are found among the process's descriptors.
// It returns how many it capped.
func capListenerRTO(ports map[int]bool) (int, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	capped := 0
	var firstErr error
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 1 {
			continue // not a listening socket (or not a socket)
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || v != unix.IPPROTO_TCP && v != unix.IPPROTO_MPTCP {
			continue // an MPTCP listener (see go.mod's godebug) is caught below: it refuses the option
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		var port int
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			port = a.Port
		case *unix.SockaddrInet6:
			port = a.Port
		}
		if !ports[port] {
			continue
		}
		if err := capRTO(fd); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		capped++
	}
	return capped, firstErr
}
