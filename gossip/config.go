package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// DefaultPort is the mesh's TCP and UDP (QUIC) port.
const DefaultPort = 7380

// Config configures a node's mesh. The zero value of every field is its
// default, except those the node fills in (Identity, Self, NodeIDOf, Logger).
type Config struct {
	// Disabled runs the node without a mesh (tests, a single site).
	Disabled bool
	// Listen holds the multiaddrs to listen on. When empty the node listens
	// on port 7380 over TCP and QUIC: on every interface if the mesh is
	// protected (PSK or allowlist) or opened with InsecureOpenMesh, on
	// loopback only otherwise. A default port that is taken falls back to a
	// free one; an explicit address that cannot be bound is an error.
	Listen []string
	// Peers are bootstrap peers (multiaddrs ending in /p2p/ID).
	Peers []string
	// PSK, if set, makes this a private network: only nodes holding the
	// same key complete a connection. TCP only (libp2p refuses QUIC with a
	// pre-shared key).
	PSK pnet.PSK
	// AllowPeers, if not empty, is the only peer IDs this node connects
	// with (a connection gater).
	AllowPeers []string
	// MDNS finds peers on the local network. It runs only when the node
	// listens beyond loopback.
	MDNS bool
	// SyncInterval is the anti-entropy period. 1s.
	SyncInterval time.Duration
	// AckInterval is how often a node tells each peer how far it has
	// applied the peer's writes, when that moved and the peer did not ask
	// (a WAIT asks, and is answered at once). 250ms: the stable time
	// waits for acknowledgements. A mesh of 2,000 members or more ticks
	// less often, as mesh.Replicator.TickInterval spaces it.
	AckInterval time.Duration
	// InsecureOpenMesh lets a node listen beyond loopback with neither a
	// PSK nor an allowlist (protected mode off).
	InsecureOpenMesh bool
	// ForgetAfter, if positive, forgets a member (Mesh.Forget) silent for
	// longer: it then no longer holds garbage collection back.
	ForgetAfter time.Duration
	// SnapshotChunkBytes is the record bytes a bootstrap asks for per
	// chunk of a peer's snapshot (the server keeps it between 4 KiB and
	// 8 MiB). 1 MiB: one write-path step applies a chunk.
	SnapshotChunkBytes int

	// Filled in by the node.
	Identity crypto.PrivKey
	Self     uint64               // this node's ID (record.NodeID)
	NodeIDOf func(peer.ID) uint64 // the node ID of a peer
	Logger   *slog.Logger
}

// Limits of the protocols. Every length read from the wire is checked
// against one of these before anything is allocated.
const (
	maxFrame         = 512<<20 + 1<<20 // one log reply or Merkle message: a 512 MB value and framing
	maxAckFrame      = 64
	maxPeersFrame    = 256 << 10
	maxPeersListed   = 256
	maxAddrsPerPeer  = 16
	maxAddrLen       = 512
	maxPushMessage   = 2 << 20 // a push's frame
	maxPushBytes     = 1 << 20 // keys and payloads of one push batch
	logReplyEntries  = 1024
	logReplyBytes    = 1 << 20
	ioTimeout        = 30 * time.Second
	maxInboundMerkle = 4 // concurrent responder sessions
)

func (c *Config) setDefaults() {
	if c.SyncInterval <= 0 {
		c.SyncInterval = time.Second
	}
	if c.AckInterval <= 0 {
		c.AckInterval = 250 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// protected reports whether the mesh admits only chosen nodes.
func (c *Config) protected() bool { return c.PSK != nil || len(c.AllowPeers) > 0 }

// listenAddrs resolves the addresses to listen on and checks protected
// mode. It returns the addresses and notes for the log.
func (c *Config) listenAddrs() ([]ma.Multiaddr, []string, error) {
	var notes []string
	specs := c.Listen
	explicit := len(specs) > 0
	if !explicit {
		host := "0.0.0.0"
		if !c.protected() && !c.InsecureOpenMesh {
			host = "127.0.0.1"
			notes = append(notes, "mesh listens on loopback only: give --psk-file or --allow-peer (or --insecure-open-mesh) to listen on every interface")
		}
		port := DefaultPort
		if !portsFree(host, port) {
			notes = append(notes, fmt.Sprintf("default mesh port %d is taken: listening on a free port instead", port))
			port = 0
		}
		specs = []string{
			fmt.Sprintf("/ip4/%s/tcp/%d", host, port),
			fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", host, port),
		}
	}
	var out []ma.Multiaddr
	droppedQUIC := false
	for _, s := range specs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, nil, fmt.Errorf("--p2p-listen %q: %w", s, err)
		}
		if isQUIC(a) && c.PSK != nil {
			droppedQUIC = true
			continue
		}
		if !isLoopback(a) && !c.protected() && !c.InsecureOpenMesh {
			return nil, nil, fmt.Errorf("refusing to listen for peers on %s with neither a pre-shared key (--psk-file) nor an allowlist (--allow-peer): "+
				"anyone who can reach it could read and write every key. Give one of them, listen on loopback only, or pass --insecure-open-mesh", a)
		}
		out = append(out, a)
	}
	if droppedQUIC {
		notes = append(notes, "a pre-shared key is set: QUIC listen addresses dropped (libp2p private networks are TCP only)")
	}
	if len(out) == 0 {
		return nil, nil, errors.New("no mesh listen address left (with a pre-shared key, give a TCP address)")
	}
	return out, notes, nil
}

func isQUIC(a ma.Multiaddr) bool {
	for _, p := range a.Protocols() {
		if p.Code == ma.P_QUIC_V1 || p.Code == ma.P_QUIC {
			return true
		}
	}
	return false
}

// isLoopback reports whether a listens only on a loopback interface.
func isLoopback(a ma.Multiaddr) bool {
	ip, err := manet.ToIP(a)
	if err != nil {
		return false // a DNS name or something else: assume it reaches further
	}
	return ip.IsLoopback()
}

// portsFree reports whether TCP and UDP port are both free on host.
func portsFree(host string, port int) bool {
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// parsePeers parses bootstrap multiaddrs into address infos.
func parsePeers(specs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range specs {
		a, err := ma.NewMultiaddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("--peer %q: %w", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("--peer %q: needs /p2p/PEER-ID at the end: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}
