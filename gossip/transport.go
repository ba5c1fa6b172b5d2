package gossip

import (
	"context"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// Transport is what the mesh needs from the network, as memberlist's
// Transport is what memberlist needs: this node's identity, streams of a
// protocol opened to a peer and accepted from one (pushes among them),
// links going up and down, dialling, and the peers' addresses for
// discovery. The node runs it over libp2p (p2p.go).
type Transport interface {
	// Self is this node's peer ID; Addrs the full addresses peers dial it
	// at.
	Self() peer.ID
	Addrs() []string
	// Start hands every event to h from now on and starts listening:
	// nothing reaches the mesh before it is ready for it.
	Start(h Handler) error
	// Open opens a stream to p of the first of protos (a protocol's
	// versions, newest first) that p speaks; if it speaks none, the error
	// is a *noCommonVersion.
	Open(ctx context.Context, p peer.ID, protos ...protocol.ID) (Stream, error)
	// Connect dials p at the addresses known for it; Connected reports
	// whether a link to p is up.
	Connect(ctx context.Context, p peer.ID) error
	Connected(p peer.ID) bool
	// Ban closes every link to p and refuses it for d (it misbehaved);
	// Allowed reports whether p may link at all (an allowlist).
	Ban(p peer.ID, d time.Duration)
	Allowed(p peer.ID) bool
	// AddAddrs remembers where p listens (for good, or for a while: an
	// address found on the LAN); PeerAddrs lists them.
	AddAddrs(p peer.ID, addrs []ma.Multiaddr, permanent bool)
	PeerAddrs(p peer.ID) []ma.Multiaddr
	// Traffic is the bytes received from and sent to p.
	Traffic(p peer.ID) (in, out int64)
	Close() error
}

// Handler is what a Transport tells the mesh.
type Handler interface {
	// Protocols are the protocols (each version an ID) streams are
	// accepted for, read once at Start.
	Protocols() []protocol.ID
	// Stream is a stream of protocol proto a peer opened.
	Stream(proto protocol.ID, s Stream)
	// LinkUp: a link to p opened, at addr; LinkDown: one closed (the mesh
	// asks Connected whether another is still up).
	LinkUp(p peer.ID, addr string)
	LinkDown(p peer.ID)
	// Found: a peer was found on the LAN, its addresses added.
	Found(p peer.ID)
}

// Stream is one stream of a protocol with a peer.
type Stream interface {
	io.ReadWriteCloser
	// CloseWrite closes our side only; Reset closes both, abruptly.
	CloseWrite() error
	Reset() error
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	// Remote is the peer at the other end.
	Remote() peer.ID
	// Protocol is the stream's protocol, the version negotiated.
	Protocol() protocol.ID
}
