package gossip

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// TestTwoMeshesOverQUIC: two meshes listening on QUIC alone link and
// replicate, the host's QUIC transport being built by hand (host.go).
func TestTwoMeshesOverQUIC(t *testing.T) {
	ka, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	kb, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	a, la := startTestMeshAt(t, ka, "/ip4/127.0.0.1/udp/0/quic-v1")
	b, lb := startTestMeshAt(t, kb, "/ip4/127.0.0.1/udp/0/quic-v1", a.Addrs()[0])
	la.set(t, a.cfg.Self, "over-quic", "1")
	waitFor(t, "the key pushed over QUIC", func() bool {
		return string(lb.db.Get([]byte("over-quic")).Value.Data) == "1"
	})
	in := b.Info()
	if len(in.Peers) != 1 || !in.Peers[0].Connected {
		t.Fatalf("info: %+v", in)
	}
}

// TestHostAgainstLibp2pDefaults: a host as libp2p.New builds it with its
// defaults connects to a mesh's host over TCP and over QUIC, identify
// tells the mesh where it listens, and ping (a service the mesh's host
// runs, as libp2p's does) answers. The mesh's host is built from libp2p's
// parts, so this is what says it still speaks as libp2p's does.
func TestHostAgainstLibp2pDefaults(t *testing.T) {
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) {
			key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
			a, _ := startTestMeshAt(t, key, listen)
			y, err := libp2p.New(libp2p.ListenAddrStrings(listen), libp2p.DisableRelay())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { y.Close() })
			ai, err := peer.AddrInfoFromString(a.Addrs()[0])
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := y.Connect(ctx, *ai); err != nil {
				t.Fatalf("connect to the mesh's host at %s: %v", ai.Addrs[0], err)
			}
			waitFor(t, "identify to tell the mesh where the peer listens", func() bool {
				return slices.ContainsFunc(a.tr.PeerAddrs(y.ID()), y.Addrs()[0].Equal)
			})
			select {
			case r := <-ping.Ping(ctx, y, ai.ID):
				if r.Error != nil {
					t.Fatalf("ping: %v", r.Error)
				}
			case <-ctx.Done():
				t.Fatal("ping: no answer")
			}
		})
	}
}

// TestPrivateNetworkHost: a mesh with a pre-shared key admits a libp2p host
// holding the same key and refuses one with another.
func TestPrivateNetworkHost(t *testing.T) {
	psk := make(pnet.PSK, 32)
	rand.Read(psk)
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	a, _ := startTestMeshWith(t, key, "/ip4/127.0.0.1/tcp/0", func(c *Config) { c.PSK = psk })
	ai, err := peer.AddrInfoFromString(a.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	other := make(pnet.PSK, 32)
	rand.Read(other)
	for _, c := range []struct {
		name string
		psk  pnet.PSK
		ok   bool
	}{{"same key", psk, true}, {"another key", other, false}} {
		t.Run(c.name, func(t *testing.T) {
			y, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.PrivateNetwork(c.psk), libp2p.DisableRelay())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { y.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = y.Connect(ctx, *ai)
			if c.ok && err != nil {
				t.Fatalf("connect with the mesh's key: %v", err)
			}
			if !c.ok && err == nil {
				t.Fatal("connected with another key")
			}
		})
	}
}
