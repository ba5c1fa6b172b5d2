package gossip

import (
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
)

// startTestMeshOver starts a mesh over libp2p on loopback as Start does,
// with wrap (nil: none) changing its transport before it listens.
func startTestMeshOver(t *testing.T, wrap func(*p2p) Transport, peers ...string) *Mesh {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(key)
	l := newTestLocal(t)
	cfg := Config{
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: peers, SyncInterval: time.Hour, AckInterval: time.Hour,
		Identity: key, Self: nodeIDOf(id), NodeIDOf: nodeIDOf, Logger: slog.New(slog.DiscardHandler),
	}
	cfg.setDefaults()
	listen, _, err := cfg.listenAddrs()
	if err != nil {
		t.Fatal(err)
	}
	boot, err := parsePeers(cfg.Peers)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMesh(cfg, l.log, l)
	if err != nil {
		t.Fatal(err)
	}
	l.m = m
	p, err := newP2P(&m.cfg, "open", listen)
	if err != nil {
		t.Fatal(err)
	}
	var tr Transport = p
	if wrap != nil {
		tr = wrap(p)
	}
	if err := m.start(tr, boot); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// answerOf is what m answers to peer exchange.
func answerOf(t *testing.T, m *Mesh) []peer.AddrInfo {
	t.Helper()
	ais, err := decodePeerList(m.appendPeerList(nil, true))
	if err != nil {
		t.Fatal(err)
	}
	return ais
}

func listenOf(t *testing.T, m *Mesh) ma.Multiaddr {
	t.Helper()
	ai, err := peer.AddrInfoFromString(m.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	return ai.Addrs[0]
}

// TestPeerExchangeListsUnidentifiedDialler: a node whose identify of a
// peer that dialled it failed (libp2p runs it once a connection, within
// 5 s: a peer stalled that long on a loaded machine is never identified on
// that link) still lists the peer at the address it listens on, which the
// peer told it in its own answer. Listed with no address, the peer could
// not be dialled by a node that joined later, and the two never linked.
func TestPeerExchangeListsUnidentifiedDialler(t *testing.T) {
	a := startTestMeshOver(t, nil)
	b := startTestMeshOver(t, func(p *p2p) Transport {
		p.h.RemoveStreamHandler(identify.ID) // a's identify of b fails
		return p
	}, a.Addrs()[0])
	at := listenOf(t, b)
	waitFor(t, "a to list b at the address b listens on", func() bool {
		return slices.ContainsFunc(answerOf(t, a), func(ai peer.AddrInfo) bool {
			return ai.ID == b.self && slices.ContainsFunc(ai.Addrs, at.Equal)
		})
	})
	if ais := answerOf(t, a); ais[0].ID != a.self || !slices.ContainsFunc(ais[0].Addrs, listenOf(t, a).Equal) {
		t.Fatalf("a's answer does not begin with a at %s: %v", listenOf(t, a), ais)
	}
}

// exchangeCounter is a transport that counts the peer exchanges its mesh
// finished asking.
type exchangeCounter struct {
	*p2p
	done atomic.Int32
}

func (c *exchangeCounter) Open(ctx context.Context, p peer.ID, protos ...protocol.ID) (Stream, error) {
	s, err := c.p2p.Open(ctx, p, protos...)
	if err != nil || s.Protocol() != protoPeers {
		return s, err
	}
	return countedStream{s, &c.done}, nil
}

// countedStream counts its Close: exchangePeersOnce closes the stream once
// it has taken the answer in.
type countedStream struct {
	Stream
	n *atomic.Int32
}

func (s countedStream) Close() error {
	err := s.Stream.Close()
	s.n.Add(1)
	return err
}

// TestPeerExchangeRepeated: a node asks a linked peer for its peers again
// while the link stays up, so that it learns of one that linked to the peer
// after it first asked. Asked only when the link came up, b never heard of
// z, which joined a after, and z (here a plain libp2p host, which asks
// nobody) never heard of b: two nodes joining a third together could stay
// apart.
func TestPeerExchangeRepeated(t *testing.T) {
	a := startTestMeshOver(t, nil)
	var counter *exchangeCounter
	b := startTestMeshOver(t, func(p *p2p) Transport {
		counter = &exchangeCounter{p2p: p}
		return counter
	}, a.Addrs()[0])
	waitFor(t, "b's first peer exchange with a", func() bool { return counter.done.Load() >= 1 })
	z, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Close() })
	if err := z.Connect(context.Background(), peer.AddrInfo{ID: a.self, Addrs: []ma.Multiaddr{listenOf(t, a)}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to link z, which it can only have heard of from a", func() bool {
		return z.Network().Connectedness(b.self) == network.Connected
	})
}

// TestPeerDialledOnceAnAddressComes: a peer heard of with no address (a
// peer exchange answer given before the answerer knew where it listens) is
// not backed off as if dials to it had failed: it is looked at again within
// a second, and dialled then once an address has come, however long it has
// been wanted.
func TestPeerDialledOnceAnAddressComes(t *testing.T) {
	m := startTestMeshOver(t, nil)
	z, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Close() })
	m.want(z.ID(), false)
	for range 5 {
		m.dial(z.ID())
	}
	m.mu.Lock()
	d := *m.wanted[z.ID()]
	m.mu.Unlock()
	if d.backoff != 0 || time.Until(d.next) > minBackoff {
		t.Fatalf("a peer with no address, looked at 5 times: backoff %v, next look in %v; want none, within %v",
			d.backoff, time.Until(d.next), minBackoff)
	}
	m.tr.AddAddrs(z.ID(), z.Addrs(), true)
	waitFor(t, "the peer dialled once its address came", func() bool {
		return z.Network().Connectedness(m.self) == network.Connected
	})
}
