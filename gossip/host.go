package gossip

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"
)

// Resource manager scale: what libp2p may take on a small machine.
const (
	rcmgrMemory = 256 << 20
	rcmgrFDs    = 512
)

// The connection manager's watermarks, libp2p's defaults: above the high
// one it trims the least used connections down to the low one.
const (
	connsLow  = 160
	connsHigh = 192
)

// newHost builds the libp2p host: TCP with Noise and yamux (and QUIC
// without a PSK), the node's identity, the private network key, the
// allowlist gater and a resource manager sized for a small machine. It does
// not listen yet: a peer that connected before the mesh watches connections
// would never be counted as linked (see Start).
//
// The host is put together from libp2p's parts rather than by libp2p.New:
// the root package and its config import every default transport (WebRTC,
// WebTransport, WebSocket) and the fx dependency injector, which made the
// program 7.7 MB larger, mapped into every node. What is built here is what
// libp2p.New builds for these options, less relay, AutoNAT, hole punching,
// metrics and the addresses peers observe (a node advertises where it
// listens), which the mesh turns off or never uses.
func newHost(cfg *Config, g *gater, bw *metrics.BandwidthCounter) (host.Host, error) {
	limits := rcmgr.DefaultLimits
	serviceLimits(&limits)
	for _, p := range []protocol.ID{protoLog, protoLog2, protoMerkle, protoMerkle3, protoAck, protoPeers} {
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
	h, err := buildHost(cfg, g, bw, rm)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, nil
}

// serviceLimits are libp2p's limits (libp2p.SetDefaultServiceLimits) for
// the two services the host runs, identify and ping.
func serviceLimits(l *rcmgr.ScalingLimitConfig) {
	l.AddServiceLimit(identify.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 4 << 20},
		rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 4 << 20})
	l.AddServicePeerLimit(identify.ServiceName,
		rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 1 << 20},
		rcmgr.BaseLimitIncrease{})
	for _, p := range []protocol.ID{identify.ID, identify.IDPush} {
		l.AddProtocolLimit(p,
			rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 4 << 20},
			rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 128, Memory: 4 << 20})
		l.AddProtocolPeerLimit(p,
			rcmgr.BaseLimit{StreamsInbound: 16, StreamsOutbound: 16, Streams: 32, Memory: 32 * (256<<20 + 16<<10)},
			rcmgr.BaseLimitIncrease{})
	}
	pingLimit := rcmgr.BaseLimit{StreamsInbound: 64, StreamsOutbound: 64, Streams: 64, Memory: 4 << 20}
	pingIncrease := rcmgr.BaseLimitIncrease{StreamsInbound: 64, StreamsOutbound: 64, Streams: 64, Memory: 4 << 20}
	l.AddServiceLimit(ping.ServiceName, pingLimit, pingIncrease)
	l.AddProtocolLimit(ping.ID, pingLimit, pingIncrease)
	pingPeer := rcmgr.BaseLimit{StreamsInbound: 2, StreamsOutbound: 3, Streams: 4, Memory: 32 * (256<<20 + 16<<10)}
	l.AddServicePeerLimit(ping.ServiceName, pingPeer, rcmgr.BaseLimitIncrease{})
	l.AddProtocolPeerLimit(ping.ID, pingPeer, rcmgr.BaseLimitIncrease{})
}

// buildHost assembles the host around rm; on an error the caller closes rm.
func buildHost(cfg *Config, g *gater, bw *metrics.BandwidthCounter, rm network.ResourceManager) (host.Host, error) {
	key := cfg.Identity
	if key == nil {
		return nil, errors.New("no identity")
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("peer ID: %w", err)
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, fmt.Errorf("peerstore: %w", err)
	}
	if err := ps.AddPrivKey(id, key); err != nil {
		ps.Close()
		return nil, fmt.Errorf("peerstore: %w", err)
	}
	if err := ps.AddPubKey(id, key.GetPublic()); err != nil {
		ps.Close()
		return nil, fmt.Errorf("peerstore: %w", err)
	}
	bus := eventbus.NewBus()
	sw, err := swarm.NewSwarm(id, ps, bus,
		swarm.WithConnectionGater(g),
		swarm.WithResourceManager(rm),
		swarm.WithMetrics(bw))
	if err != nil {
		ps.Close()
		return nil, fmt.Errorf("swarm: %w", err)
	}
	// From here the swarm owns the peerstore, and closing the host closes
	// the swarm, the peerstore and rm.
	var quicConns *quicreuse.ConnManager
	fail := func(err error) (host.Host, error) {
		sw.Close()
		ps.Close()
		if quicConns != nil {
			quicConns.Close()
		}
		return nil, err
	}
	muxers := []upgrader.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}}
	nt, err := noise.New(noise.ID, key, muxers)
	if err != nil {
		return fail(fmt.Errorf("noise: %w", err))
	}
	up, err := upgrader.New([]sec.SecureTransport{nt}, muxers, cfg.PSK, rm, g)
	if err != nil {
		return fail(fmt.Errorf("upgrader: %w", err))
	}
	tt, err := tcp.NewTCPTransport(up, rm, nil, tcp.WithDialerForAddr(rtoDialer))
	if err != nil {
		return fail(fmt.Errorf("TCP transport: %w", err))
	}
	if err := sw.AddTransport(tt); err != nil {
		return fail(fmt.Errorf("TCP transport: %w", err))
	}
	// A private network is TCP only: QUIC has its own handshake, which a
	// pre-shared key cannot wrap.
	if cfg.PSK == nil {
		if quicConns, err = newQUICConns(key, rm); err != nil {
			return fail(err)
		}
		qt, err := libp2pquic.NewTransport(key, quicConns, nil, g, rm)
		if err != nil {
			return fail(fmt.Errorf("QUIC transport: %w", err))
		}
		if err := sw.AddTransport(qt); err != nil {
			return fail(fmt.Errorf("QUIC transport: %w", err))
		}
	}
	cm, err := connmgr.NewConnManager(connsLow, connsHigh)
	if err != nil {
		return fail(fmt.Errorf("connection manager: %w", err))
	}
	bh, err := basichost.NewHost(sw, &basichost.HostOpts{
		EventBus:    bus,
		ConnManager: cm,
		EnablePing:  true,
	})
	if err != nil {
		cm.Close()
		return fail(fmt.Errorf("host: %w", err))
	}
	bh.Start()
	return &meshHost{BasicHost: bh, quic: quicConns}, nil
}

// meshHost is the basic host and what it does not close itself: the
// sockets QUIC shares between its listeners and dials. Close may be called
// more than once, as the basic host's may.
type meshHost struct {
	*basichost.BasicHost
	quic      *quicreuse.ConnManager
	closeOnce sync.Once
	closeErr  error
}

func (h *meshHost) Close() error {
	h.closeOnce.Do(func() {
		h.closeErr = h.BasicHost.Close()
		if h.quic == nil {
			return
		}
		if err := h.quic.Close(); err != nil && h.closeErr == nil {
			h.closeErr = fmt.Errorf("close QUIC sockets: %w", err)
		}
	})
	return h.closeErr
}

// Key derivations for QUIC's stateless resets and address tokens, as
// libp2p's own constructor derives them from the node's key: a node
// restarted with the same identity can reset a peer's stale connections.
const (
	statelessResetKeyInfo = "libp2p quic stateless reset key"
	tokenGeneratorKeyInfo = "libp2p quic token generator key"
)

// newQUICConns is QUIC's socket manager as libp2p.New makes it: each
// inbound connection is admitted by the resource manager before its
// handshake, and source addresses are verified under load.
func newQUICConns(key crypto.PrivKey, rm network.ResourceManager) (*quicreuse.ConnManager, error) {
	raw, err := key.Raw()
	if err != nil {
		return nil, fmt.Errorf("QUIC keys: %w", err)
	}
	var reset quic.StatelessResetKey
	var token quic.TokenGeneratorKey
	for _, k := range []struct {
		dst  []byte
		info string
	}{{reset[:], statelessResetKeyInfo}, {token[:], tokenGeneratorKeyInfo}} {
		b, err := hkdf.Key(sha256.New, raw, nil, k.info, len(k.dst))
		if err != nil {
			return nil, fmt.Errorf("QUIC keys: %w", err)
		}
		copy(k.dst, b)
	}
	cm, err := quicreuse.NewConnManager(reset, token,
		quicreuse.ConnContext(func(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
			// Without an address the resource manager still decides.
			addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quic.Version1)
			if err != nil {
				addr = nil
			}
			scope, err := rm.OpenConnection(network.DirInbound, false, addr)
			if err != nil {
				return ctx, err
			}
			ctx = network.WithConnManagementScope(ctx, scope)
			context.AfterFunc(ctx, scope.Done)
			return ctx, nil
		}),
		quicreuse.VerifySourceAddress(func(addr net.Addr) bool { return rm.VerifySourceAddress(addr) }),
	)
	if err != nil {
		return nil, fmt.Errorf("QUIC sockets: %w", err)
	}
	return cm, nil
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
