package gossip

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// Protocol IDs.
const (
	protoLog    = protocol.ID("/redmesh/log/2")
	protoMerkle = protocol.ID("/redmesh/merkle/3")
	protoAck    = protocol.ID("/redmesh/ack/3")
	protoPeers  = protocol.ID("/redmesh/peers/1")
)

// Resource manager scale: what libp2p may take on a small machine.
const (
	rcmgrMemory = 256 << 20
	rcmgrFDs    = 512
)

// newHost builds the libp2p host: TCP with Noise (and QUIC without a PSK),
// the node's identity, the private network key, the allowlist gater and a
// resource manager sized for a small machine. It does not listen yet: a peer
// that connected before the mesh watches connections would never be counted
// as linked (see Start).
func newHost(cfg *Config, g *gater, bw *metrics.BandwidthCounter) (host.Host, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	for _, p := range []protocol.ID{protoLog, protoMerkle, protoAck, protoPeers} {
		limits.AddProtocolLimit(p,
			rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 64 << 20},
			rcmgr.BaseLimitIncrease{})
		limits.AddProtocolPeerLimit(p,
			rcmgr.BaseLimit{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 16 << 20},
			rcmgr.BaseLimitIncrease{})
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Scale(rcmgrMemory, rcmgrFDs)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Identity),
		libp2p.NoListenAddrs,
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport, tcp.WithDialerForAddr(rtoDialer)),
		libp2p.ConnectionGater(g),
		libp2p.ResourceManager(rm),
		libp2p.BandwidthReporter(bw),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	}
	if cfg.PSK != nil {
		opts = append(opts, libp2p.PrivateNetwork(cfg.PSK))
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, nil
}

// gater is the connection gater: the allowlist, and short bans of peers
// that sent malformed messages.
type gater struct {
	allow map[peer.ID]bool // nil: every peer
	mu    sync.Mutex
	bans  map[peer.ID]time.Time
}

func newGater(allow []string) (*gater, error) {
	g := &gater{bans: map[peer.ID]time.Time{}}
	if len(allow) > 0 {
		g.allow = map[peer.ID]bool{}
		for _, s := range allow {
			id, err := peer.Decode(s)
			if err != nil {
				return nil, fmt.Errorf("--allow-peer %q: %w", s, err)
			}
			g.allow[id] = true
		}
	}
	return g, nil
}

func (g *gater) ban(p peer.ID, d time.Duration) {
	g.mu.Lock()
	g.bans[p] = time.Now().Add(d)
	g.mu.Unlock()
}

func (g *gater) allowed(p peer.ID) bool {
	if g.allow != nil && !g.allow[p] {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if until, ok := g.bans[p]; ok {
		if time.Now().Before(until) {
			return false
		}
		delete(g.bans, p)
	}
	return true
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return g.allowed(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.allowed(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
