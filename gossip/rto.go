package gossip

import (
	"net"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// MaxRetransmitTimeout caps TCP's retransmission timeout on mesh
// connections (TCP_RTO_MAX_MS, Linux 6.15 and later; elsewhere the kernel's
// 120 s stands). A connection that carried data through a partition
// otherwise retransmits at 0.2, 0.6, 1.4, 3, 6.2, 12.6 s... after the first
// loss, and nothing flows after the heal until its next retransmission
// (bench/RESULTS.md, "Chaos", has what that cost). Capped, the connection resumes within a second of the heal. Both ends need
// the cap, since each direction waits for its own sender's timer: dialled
// sockets get it as they are made, accepted ones from the listener.
const MaxRetransmitTimeout = time.Second

// rtoDialer is the TCP transport's dialer: a plain dial whose socket gets
// the cap. It replaces libp2p's dial from the listening port (reuseport),
// which only helps NAT traversal, which the mesh does not do (relay and
// hole punching are off).
func rtoDialer(ma.Multiaddr) (tcp.ContextDialer, error) {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = capRTO(int(fd)) })
	}}, nil
}
