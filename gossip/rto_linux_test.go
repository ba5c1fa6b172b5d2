package gossip

import (
	"os"
	"strconv"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/sys/unix"
)

// Both ends of a mesh connection, the dialled and the accepted socket, cap
// TCP's retransmission timeout, so that a connection that carried data
// through a partition resumes within MaxRetransmitTimeout of the heal.
func TestMeshConnectionsCapRetransmitTimeout(t *testing.T) {
	probe, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = capRTO(probe)
	unix.Close(probe)
	if err != nil {
		t.Skipf("the kernel has no TCP_RTO_MAX_MS (Linux 6.15): %v", err)
	}
	a, _ := startTestMesh(t)
	b, _ := startTestMesh(t, a.Addrs()[0])
	waitFor(t, "the link", func() bool { return a.linked.Load() == 1 && b.linked.Load() == 1 })
	port := func(m *Mesh) int {
		for _, addr := range m.tr.(*p2p).h.Network().ListenAddresses() {
			if s, err := addr.ValueForProtocol(ma.P_TCP); err == nil {
				p, _ := strconv.Atoi(s)
				return p
			}
		}
		t.Fatal("no TCP listen address")
		return 0
	}
	portA := port(a)
	// The connection is b's dial to a: one socket with a's port as its
	// peer's, one accepted on a's port.
	dialled, accepted := 0, 0
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || v != unix.IPPROTO_TCP {
			continue
		}
		if v, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); v == 1 {
			continue
		}
		local, err1 := unix.Getsockname(fd)
		remote, err2 := unix.Getpeername(fd)
		if err1 != nil || err2 != nil {
			continue
		}
		l, r := local.(*unix.SockaddrInet4), remote.(*unix.SockaddrInet4)
		if l == nil || r == nil {
			continue
		}
		rto, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, tcpRTOMaxMS)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Port == portA:
			dialled++
		case l.Port == portA:
			accepted++
		default:
			continue
		}
		if rto != int(MaxRetransmitTimeout.Milliseconds()) {
			t.Errorf("socket %d:%d -> %d: TCP_RTO_MAX_MS %d, want %d", fd, l.Port, r.Port, rto, MaxRetransmitTimeout.Milliseconds())
		}
	}
	if dialled == 0 || accepted == 0 {
		t.Fatalf("found %d dialled and %d accepted sockets of the link", dialled, accepted)
	}
}
