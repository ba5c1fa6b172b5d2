package gossip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/redmesh/redmesh/record"
)

// memNet is an in-memory network for meshes under test, in one process:
// links, streams (TCP connections on loopback: buffered as libp2p's streams
// are, where an unbuffered pipe would stall two sides writing at once),
// partitions and pushes lost on the push
// streams. Handlers run outside its lock, as libp2p's notifications do.
type memNet struct {
	mu    sync.Mutex
	nodes map[peer.ID]*memTransport
	links map[[2]peer.ID]*memLink
	cut   map[[2]peer.ID]bool
	// drop is how many of the next pushes on the push stream from one
	// node to another are lost.
	drop map[[2]peer.ID]int
	ln   net.Listener
}

type memLink struct{ streams []net.Conn }

func newMemNet(t testing.TB) *memNet {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &memNet{nodes: map[peer.ID]*memTransport{}, links: map[[2]peer.ID]*memLink{}, cut: map[[2]peer.ID]bool{}, drop: map[[2]peer.ID]int{}, ln: ln}
}

// connPair is a connected pair of loopback connections. n.mu is held, so
// the connection accepted is the one dialled.
func (n *memNet) connPair() (net.Conn, net.Conn, error) {
	a, err := net.Dial("tcp", n.ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	b, err := n.ln.Accept()
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func pair(a, b peer.ID) [2]peer.ID {
	if b < a {
		a, b = b, a
	}
	return [2]peer.ID{a, b}
}

// transport is id's Transport on the network.
func (n *memNet) transport(id peer.ID) *memTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := &memTransport{net: n, id: id, addrs: map[peer.ID][]ma.Multiaddr{}}
	n.nodes[id] = t
	return t
}

// partition cuts the link between a and b, and keeps them apart until
// heal.
func (n *memNet) partition(a, b peer.ID) {
	n.mu.Lock()
	n.cut[pair(a, b)] = true
	n.mu.Unlock()
	n.unlink(a, b)
}

func (n *memNet) heal(a, b peer.ID) {
	n.mu.Lock()
	delete(n.cut, pair(a, b))
	n.mu.Unlock()
}

// losePushes makes the next k pushes from a to b go missing.
func (n *memNet) losePushes(a, b peer.ID, k int) {
	n.mu.Lock()
	n.drop[[2]peer.ID{a, b}] += k
	n.mu.Unlock()
}

// lost reports whether the pushes losePushes made go missing from a to b
// are all gone.
func (n *memNet) lost(a, b peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.drop[[2]peer.ID{a, b}] == 0
}

func (n *memNet) unlink(a, b peer.ID) {
	n.mu.Lock()
	l := n.links[pair(a, b)]
	delete(n.links, pair(a, b))
	ta, tb := n.nodes[a], n.nodes[b]
	n.mu.Unlock()
	if l == nil {
		return
	}
	for _, c := range l.streams {
		c.Close()
	}
	for _, e := range [][2]*memTransport{{ta, tb}, {tb, ta}} {
		if e[0] != nil && e[0].hd != nil {
			e[0].hd.LinkDown(e[1].id)
		}
	}
}

type memTransport struct {
	net *memNet
	id  peer.ID
	hd  Handler
	// protos are the protocols hd serves (Handler.Protocols).
	protos  []protocol.ID
	closed  bool
	addrsMu sync.Mutex
	addrs   map[peer.ID][]ma.Multiaddr
}

func (t *memTransport) Self() peer.ID   { return t.id }
func (t *memTransport) Addrs() []string { return nil }

func (t *memTransport) Start(h Handler) error {
	protos := h.Protocols()
	t.net.mu.Lock()
	t.hd, t.protos = h, protos
	t.net.mu.Unlock()
	return nil
}

// peers are the nodes linked to t, and the handlers to reach them.
func (t *memTransport) linked() []*memTransport {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	var out []*memTransport
	for k := range t.net.links {
		switch t.id {
		case k[0]:
			out = append(out, t.net.nodes[k[1]])
		case k[1]:
			out = append(out, t.net.nodes[k[0]])
		}
	}
	slices.SortFunc(out, func(a, b *memTransport) int { return cmpID(a.id, b.id) })
	return out
}

func cmpID(a, b peer.ID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Open negotiates as libp2p does: the first of protos the peer serves.
func (t *memTransport) Open(_ context.Context, p peer.ID, protos ...protocol.ID) (Stream, error) {
	t.net.mu.Lock()
	l := t.net.links[pair(t.id, p)]
	q := t.net.nodes[p]
	if l == nil || q == nil || q.hd == nil {
		t.net.mu.Unlock()
		return nil, errors.New("not linked")
	}
	i := slices.IndexFunc(protos, func(id protocol.ID) bool { return slices.Contains(q.protos, id) })
	if i < 0 {
		t.net.mu.Unlock()
		return nil, &noCommonVersion{offered: protos, theirs: meshIDs(q.protos)}
	}
	proto := protos[i]
	a, b, err := t.net.connPair()
	if err != nil {
		t.net.mu.Unlock()
		return nil, err
	}
	l.streams = append(l.streams, a, b)
	t.net.mu.Unlock()
	go q.hd.Stream(proto, memStream{b, t.id, proto})
	if slices.Contains(pushIDs, proto) {
		return &lossyStream{memStream: memStream{a, p, proto}, net: t.net, link: [2]peer.ID{t.id, p}}, nil
	}
	return memStream{a, p, proto}, nil
}

// lossyStream is a push stream that loses the frames memNet.drop says.
type lossyStream struct {
	memStream
	net     *memNet
	link    [2]peer.ID
	pending []byte
}

// Write passes on the whole frames in what was written so far, less those
// lost.
func (s *lossyStream) Write(b []byte) (int, error) {
	s.pending = append(s.pending, b...)
	var out []byte
	for {
		n, k := binary.Uvarint(s.pending)
		if k <= 0 || uint64(len(s.pending)-k) < n {
			break
		}
		frame := s.pending[:k+int(n)]
		s.net.mu.Lock()
		lost := s.net.drop[s.link] > 0
		if lost {
			s.net.drop[s.link]--
		}
		s.net.mu.Unlock()
		if !lost {
			out = append(out, frame...)
		}
		s.pending = s.pending[len(frame):]
	}
	if len(out) > 0 {
		if _, err := s.memStream.Write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func (t *memTransport) Connect(_ context.Context, p peer.ID) error {
	t.net.mu.Lock()
	q := t.net.nodes[p]
	k := pair(t.id, p)
	switch {
	case q == nil || q.hd == nil || q.closed || t.closed:
		t.net.mu.Unlock()
		return errors.New("no such peer")
	case t.net.cut[k]:
		t.net.mu.Unlock()
		return errors.New("partitioned")
	case t.net.links[k] != nil:
		t.net.mu.Unlock()
		return nil
	}
	t.net.links[k] = &memLink{}
	t.net.mu.Unlock()
	t.hd.LinkUp(p, "mem")
	q.hd.LinkUp(t.id, "mem")
	return nil
}

func (t *memTransport) Connected(p peer.ID) bool {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	return t.net.links[pair(t.id, p)] != nil
}

func (t *memTransport) Ban(p peer.ID, _ time.Duration) { t.net.unlink(t.id, p) }
func (t *memTransport) Allowed(peer.ID) bool           { return true }

func (t *memTransport) AddAddrs(p peer.ID, addrs []ma.Multiaddr, _ bool) {
	t.addrsMu.Lock()
	t.addrs[p] = append(t.addrs[p], addrs...)
	t.addrsMu.Unlock()
}

// PeerAddrs: every node of the network is reachable at memAddr, as a
// linked libp2p peer is at the address identify told.
func (t *memTransport) PeerAddrs(p peer.ID) []ma.Multiaddr {
	t.addrsMu.Lock()
	defer t.addrsMu.Unlock()
	if len(t.addrs[p]) == 0 {
		return []ma.Multiaddr{memAddr}
	}
	return t.addrs[p]
}

var memAddr = ma.StringCast("/ip4/127.0.0.1/tcp/1")

func (t *memTransport) Traffic(peer.ID) (int64, int64) { return 0, 0 }

func (t *memTransport) Close() error {
	t.net.mu.Lock()
	t.closed = true
	var others []peer.ID
	for k := range t.net.links {
		if k[0] == t.id {
			others = append(others, k[1])
		} else if k[1] == t.id {
			others = append(others, k[0])
		}
	}
	t.net.mu.Unlock()
	for _, p := range others {
		t.net.unlink(t.id, p)
	}
	return nil
}

// memStream is one end of a loopback connection as a mesh stream.
// CloseWrite leaves it open: the peer closes it, which its callers wait
// for.
type memStream struct {
	net.Conn
	remote peer.ID
	proto  protocol.ID
}

func (s memStream) CloseWrite() error     { return nil }
func (s memStream) Reset() error          { return s.Close() }
func (s memStream) Remote() peer.ID       { return s.remote }
func (s memStream) Protocol() protocol.ID { return s.proto }

// startMemMesh starts a mesh over the in-memory network, its store and
// keyspace real, linked to peers; mod changes its config first (nil:
// none).
func startMemMesh(t *testing.T, n *memNet, mod func(*Config), peers ...peer.ID) (*Mesh, *testLocal) {
	t.Helper()
	return startMemMeshAs(t, n, record.Encoding2, mod, peers...)
}

// startMemMeshAs is startMemMesh for a node whose newest record encoding on
// the wire is enc: with Encoding1, a node of the build before counts'
// short form, as its peers see it.
func startMemMeshAs(t *testing.T, n *memNet, enc record.Encoding, mod func(*Config), peers ...peer.ID) (*Mesh, *testLocal) {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(key)
	l := newTestLocal(t)
	s, quiet := l.log, slog.New(slog.DiscardHandler)
	cfg := Config{
		// No anti-entropy and acknowledgements only when a WAIT asks:
		// pushes and the logs bring every write.
		SyncInterval: time.Hour, AckInterval: time.Hour,
		Identity: key, Self: nodeIDOf(id), NodeIDOf: nodeIDOf, Logger: quiet,
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := newMesh(cfg, s, l)
	if err != nil {
		t.Fatal(err)
	}
	l.m = m
	m.wireEncoding = enc
	var boot []peer.AddrInfo
	for _, p := range peers {
		boot = append(boot, peer.AddrInfo{ID: p})
	}
	tr := n.transport(id)
	if err := m.start(tr, boot); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() }) // before the store's (newTestLocal)
	return m, l
}

// TestMemTransport: three meshes over the in-memory transport, with no
// anti-entropy, replicate as over libp2p: a write is pushed to both peers;
// a lost push shows as a gap the next push reveals, and the origin's log
// is read for it; a node cut off by a partition catches up from the logs
// when it heals.
func TestMemTransport(t *testing.T) {
	n := newMemNet(t)
	a, la := startMemMesh(t, n, nil)
	b, lb := startMemMesh(t, n, nil, a.ID())
	c, lc := startMemMesh(t, n, nil, a.ID(), b.ID())
	// b and c start empty with peers to join: each first syncs (equal
	// roots, or a snapshot if a write came first).
	waitFor(t, "the links and first syncs", func() bool {
		return a.linked.Load() == 2 && b.linked.Load() == 2 && c.linked.Load() == 2 && b.Ready() && c.Ready()
	})
	has := func(l *testLocal, key, val string) bool { return string(l.db.Get([]byte(key)).Value.Data) == val }

	la.set(t, a.cfg.Self, "k1", "1")
	waitFor(t, "k1 everywhere", func() bool { return has(lb, "k1", "1") && has(lc, "k1", "1") })
	// A full mesh: pushes carry no hop budget, nobody relays, and no copy
	// comes twice.
	for _, m := range []*Mesh{a, b, c} {
		if in := m.Info(); in.PushRelayed != 0 || in.PushHeld != 0 {
			t.Fatalf("%s on a full mesh: relayed %d, held %d", m.ID(), in.PushRelayed, in.PushHeld)
		}
	}
	for _, m := range []*Mesh{b, c} {
		if in := m.Info(); in.PushReceived != 1 {
			t.Fatalf("%s received %d pushed records, want k1's", m.ID(), in.PushReceived)
		}
	}

	n.losePushes(a.ID(), c.ID(), 1)
	la.set(t, a.cfg.Self, "k2", "2")
	waitFor(t, "k2 at b", func() bool { return has(lb, "k2", "2") })
	// k2's push to c is lost before k3 is written: waiting in c's queue,
	// k3's would be coalesced into it and lost with it, leaving no gap to
	// see.
	waitFor(t, "k2's push to c lost", func() bool { return n.lost(a.ID(), c.ID()) })
	la.set(t, a.cfg.Self, "k3", "3")
	waitFor(t, "k2 and k3 at c, k2 read from a's log", func() bool { return has(lc, "k2", "2") && has(lc, "k3", "3") })

	n.partition(c.ID(), a.ID())
	n.partition(c.ID(), b.ID())
	waitFor(t, "c alone", func() bool { return c.linked.Load() == 0 })
	la.set(t, a.cfg.Self, "k4", "4")
	n.heal(c.ID(), a.ID())
	n.heal(c.ID(), b.ID())
	waitFor(t, "k4 at c after the heal", func() bool { return has(lc, "k4", "4") })
	waitFor(t, "equal roots", func() bool { return la.MerkleRoot() == lc.MerkleRoot() && lb.MerkleRoot() == lc.MerkleRoot() })
	if in := c.Info(); in.CatchUpEntries == 0 {
		t.Fatalf("c read nothing from a log: %+v", in)
	}
}

// TestMemTransportRelay: a never reaches c (cut off from it from the
// start), only b; a learns of c from b's peers, so its pushes carry a hop
// budget, and b relays them to c. With no anti-entropy, and c's catch-up
// from b's log done before the writes, only the relay brings them.
func TestMemTransportRelay(t *testing.T) {
	n := newMemNet(t)
	b, lb := startMemMesh(t, n, nil)
	c, lc := startMemMesh(t, n, nil, b.ID())
	waitFor(t, "b and c linked", func() bool { return b.linked.Load() == 1 && c.linked.Load() == 1 && c.Ready() })
	a, la := startMemMesh(t, n, func(cfg *Config) {
		id, err := peer.IDFromPrivateKey(cfg.Identity)
		if err != nil {
			t.Fatal(err)
		}
		n.partition(id, c.ID())
	}, b.ID())
	waitFor(t, "a linked to b alone, knowing of c", func() bool {
		a.mu.Lock()
		_, unheard := a.r.Stability().Count()
		a.mu.Unlock()
		return a.linked.Load() == 1 && b.linked.Load() == 2 && a.Ready() && unheard == 1
	})
	has := func(l *testLocal, key, val string) bool { return string(l.db.Get([]byte(key)).Value.Data) == val }
	for i := range 3 {
		k := fmt.Sprint("k", i)
		la.set(t, a.cfg.Self, k, "1")
		waitFor(t, k+" at b and c", func() bool { return has(lb, k, "1") && has(lc, k, "1") })
	}
	if in := c.Info(); in.CatchUpEntries != 0 {
		t.Fatalf("c read a log for the writes: %+v", in)
	}
	// b relayed each of a's three pushes to c; c has one path only, so no
	// copy came twice, and received counts the relayed records.
	// b counts a relay once its queue took it, which may be after c merged
	// it.
	waitFor(t, "b's relays counted", func() bool { return b.Info().PushRelayed >= 3 })
	if in := b.Info(); in.PushRelayed != 3 || in.PushRelayDropped != 0 {
		t.Fatalf("b relayed %d pushes and dropped %d, want 3 and 0", in.PushRelayed, in.PushRelayDropped)
	}
	if in := c.Info(); in.PushHeld != 0 || in.PushReceived != 3 || in.PushRelayed != 0 {
		t.Fatalf("c: held %d, received %d, relayed %d; want 0, 3, 0", in.PushHeld, in.PushReceived, in.PushRelayed)
	}
}

// TestMemTransportRelayHeld: a is cut off from c; b, c and d are linked
// to each other. Each of a's pushes reaches b and d from a, and each
// relays it on: to c, and to the other, which holds it already and drops
// the copy unmerged, counted as received and held.
func TestMemTransportRelayHeld(t *testing.T) {
	n := newMemNet(t)
	b, lb := startMemMesh(t, n, nil)
	c, lc := startMemMesh(t, n, nil, b.ID())
	d, ld := startMemMesh(t, n, nil, b.ID(), c.ID())
	waitFor(t, "b, c and d linked", func() bool {
		return b.linked.Load() == 2 && c.linked.Load() == 2 && d.linked.Load() == 2 && c.Ready() && d.Ready()
	})
	a, la := startMemMesh(t, n, func(cfg *Config) {
		id, err := peer.IDFromPrivateKey(cfg.Identity)
		if err != nil {
			t.Fatal(err)
		}
		n.partition(id, c.ID())
	}, b.ID(), d.ID())
	waitFor(t, "a linked to b and d, knowing of c", func() bool {
		a.mu.Lock()
		_, unheard := a.r.Stability().Count()
		a.mu.Unlock()
		return a.linked.Load() == 2 && b.linked.Load() == 3 && d.linked.Load() == 3 && a.Ready() && unheard == 1
	})
	has := func(l *testLocal, key, val string) bool { return string(l.db.Get([]byte(key)).Value.Data) == val }
	const writes = 3
	for i := range writes {
		k := fmt.Sprint("k", i)
		la.set(t, a.cfg.Self, k, "1")
		waitFor(t, k+" at b, c and d", func() bool { return has(lb, k, "1") && has(lc, k, "1") && has(ld, k, "1") })
	}
	waitFor(t, "b and d relaying, and holding a copy", func() bool {
		bi, di := b.Info(), d.Info()
		return bi.PushRelayed > 0 && di.PushRelayed > 0 && bi.PushHeld+di.PushHeld > 0
	})
	if in := a.Info(); in.PushReceived != 0 || in.PushRelayed != 0 || in.PushHeld != 0 {
		t.Fatalf("a, the origin: received %d, relayed %d, held %d; want none", in.PushReceived, in.PushRelayed, in.PushHeld)
	}
	if bi, di := b.Info(), d.Info(); bi.PushReceived+di.PushReceived <= bi.PushApplied+di.PushApplied {
		t.Fatalf("b and d received %d records, applied %d: the held copies' are not counted",
			bi.PushReceived+di.PushReceived, bi.PushApplied+di.PushApplied)
	}
}
