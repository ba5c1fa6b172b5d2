package gossip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
)

const permanentTTL = peerstore.PermanentAddrTTL

// p2p is the mesh's Transport over libp2p: the host (host.go) with its
// gater and bandwidth counter, mDNS on a LAN.
type p2p struct {
	cfg    *Config
	log    *slog.Logger
	name   string // the mesh's name: its mDNS service
	listen []ma.Multiaddr
	h      host.Host
	gater  *gater
	bw     *metrics.BandwidthCounter
	mdns   io.Closer
	ctx    context.Context
	cancel context.CancelFunc
}

// newP2P builds the host; it listens only once started.
func newP2P(cfg *Config, name string, listen []ma.Multiaddr) (*p2p, error) {
	g, err := newGater(cfg.AllowPeers)
	if err != nil {
		return nil, err
	}
	t := &p2p{cfg: cfg, log: cfg.Logger, name: name, listen: listen, gater: g, bw: metrics.NewBandwidthCounter()}
	if t.h, err = newHost(cfg, g, t.bw); err != nil {
		return nil, err
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t, nil
}

func (t *p2p) Self() peer.ID { return t.h.ID() }

// Addrs are the node's full mesh multiaddrs, with /p2p/ID.
func (t *p2p) Addrs() []string {
	var out []string
	for _, a := range t.h.Addrs() {
		out = append(out, a.String()+"/p2p/"+t.h.ID().String())
	}
	return out
}

// Start sets the stream handlers and link events, and only then listens: a
// peer that connected before would never be counted as linked.
func (t *p2p) Start(hd Handler) error {
	for _, p := range hd.Protocols() {
		t.h.SetStreamHandler(p, func(s network.Stream) { hd.Stream(p, p2pStream{s}) })
	}
	t.h.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { hd.LinkUp(c.RemotePeer(), c.RemoteMultiaddr().String()) },
		DisconnectedF: func(_ network.Network, c network.Conn) { hd.LinkDown(c.RemotePeer()) },
	})
	if err := t.h.Network().Listen(t.listen...); err != nil {
		return fmt.Errorf("listen on %v: %w", t.listen, err)
	}
	t.capRTO()
	if err := t.startMDNS(hd); err != nil {
		t.log.Warn("mDNS discovery not started", "err", err)
	}
	return nil
}

// Open opens a stream in the first of protos p speaks. NewStream waits
// for identify on the link, so when negotiation fails the peerstore lists
// what p speaks: if none of protos, the error says so.
func (t *p2p) Open(ctx context.Context, p peer.ID, protos ...protocol.ID) (Stream, error) {
	s, err := t.h.NewStream(ctx, p, protos...)
	if err != nil {
		ps := t.h.Peerstore()
		if theirs, perr := ps.GetProtocols(p); perr == nil && len(theirs) > 0 {
			if common, perr := ps.SupportsProtocols(p, protos...); perr == nil && len(common) == 0 {
				return nil, &noCommonVersion{offered: protos, theirs: meshIDs(theirs)}
			}
		}
		return nil, err
	}
	return p2pStream{s}, nil
}

func (t *p2p) Connect(ctx context.Context, p peer.ID) error {
	// The backoff is the mesh's (dialState): without this the swarm adds
	// its own per address (5 s plus a second per failure squared, up to 5
	// min) and refuses the dials the mesh's schedule makes after a long
	// partition.
	ctx = network.WithForceDirectDial(ctx, "redmesh redials on its own backoff")
	return t.h.Connect(ctx, peer.AddrInfo{ID: p})
}

func (t *p2p) Connected(p peer.ID) bool {
	return t.h.Network().Connectedness(p) == network.Connected
}

func (t *p2p) Ban(p peer.ID, d time.Duration) {
	t.gater.ban(p, d)
	t.h.Network().ClosePeer(p)
}

func (t *p2p) Allowed(p peer.ID) bool { return t.gater.allowed(p) }

func (t *p2p) AddAddrs(p peer.ID, addrs []ma.Multiaddr, permanent bool) {
	ttl := peerstore.TempAddrTTL
	if permanent {
		ttl = permanentTTL
	}
	t.h.Peerstore().AddAddrs(p, addrs, ttl)
}

// identifyWait bounds how long PeerAddrs waits for identify on a link.
const identifyWait = 5 * time.Second

// PeerAddrs lists where p listens. A peer that dialled us is known by its
// listen addresses only once identify on the link has run or the peer has
// answered our peer exchange (the link's own remote address is the
// dialler's ephemeral port), so for a linked peer with none yet this waits
// for identify. Otherwise peer exchange lists the peer with no address, and
// two nodes that join a third at once each learn of the other with nothing
// to dial.
func (t *p2p) PeerAddrs(p peer.ID) []ma.Multiaddr {
	ps := t.h.Peerstore()
	if addrs := ps.Addrs(p); len(addrs) > 0 {
		return addrs
	}
	ids, ok := t.h.(interface{ IDService() identify.IDService })
	if !ok {
		return ps.Addrs(p)
	}
	timeout := time.NewTimer(identifyWait)
	defer timeout.Stop()
	for _, c := range t.h.Network().ConnsToPeer(p) {
		select {
		case <-ids.IDService().IdentifyWait(c):
		case <-timeout.C:
			return ps.Addrs(p)
		case <-t.ctx.Done():
			return ps.Addrs(p)
		}
	}
	return ps.Addrs(p)
}

func (t *p2p) Traffic(p peer.ID) (int64, int64) {
	st := t.bw.GetBandwidthForPeer(p)
	return st.TotalIn, st.TotalOut
}

func (t *p2p) Close() error {
	t.cancel()
	if t.mdns != nil {
		t.mdns.Close()
	}
	return t.h.Close()
}

// p2pStream is a libp2p stream as the mesh sees one.
type p2pStream struct{ network.Stream }

func (s p2pStream) Remote() peer.ID { return s.Conn().RemotePeer() }

// capRTO caps the retransmission timeout of the mesh's TCP listeners (see
// MaxRetransmitTimeout). A peer that connected in the moment before keeps
// the kernel's backoff on that connection.
func (t *p2p) capRTO() {
	ports := map[int]bool{}
	for _, a := range t.h.Network().ListenAddresses() {
		if s, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			if p, err := strconv.Atoi(s); err == nil {
				ports[p] = true
			}
		}
	}
	if len(ports) == 0 {
		return
	}
	n, err := capListenerRTO(ports)
	if err != nil {
		t.log.Info("TCP retransmission backoff left at the kernel's (a partition's heal may take longer to notice)", "err", err)
		return
	}
	t.log.Debug("TCP retransmission timeout capped", "listeners", n, "max", MaxRetransmitTimeout)
}

// startMDNS finds peers on the LAN, when the node listens beyond loopback.
func (t *p2p) startMDNS(hd Handler) error {
	if !t.cfg.MDNS {
		return nil
	}
	lan := false
	for _, a := range t.listen {
		lan = lan || !isLoopback(a)
	}
	if !lan {
		return nil
	}
	svc := mdns.NewMdnsService(t.h, "redmesh-"+t.name, mdnsNotifee{t, hd})
	if err := svc.Start(); err != nil {
		return err
	}
	t.mdns = svc
	return nil
}

type mdnsNotifee struct {
	t  *p2p
	hd Handler
}

func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.t.h.ID() || !n.t.gater.allowed(ai.ID) {
		return
	}
	n.t.AddAddrs(ai.ID, ai.Addrs, false)
	n.hd.Found(ai.ID)
}
