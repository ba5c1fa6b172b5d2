package gossip

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/record"
)

// apply merges rec into key as a write of this node's (or, stamped by
// another node, as one it received: not pushed).
func (l *testLocal) apply(t *testing.T, key string, rec record.Record) {
	t.Helper()
	err := l.db.Update(context.Background(), func(tx *keyspace.Tx) error {
		_, _, err := tx.Apply([]byte(key), rec)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// version is the next version of node on l's clock.
func (l *testLocal) version(node uint64) record.Version {
	var v record.Version
	l.db.Update(context.Background(), func(*keyspace.Tx) error {
		v = record.Version{TS: l.stamp(), Node: record.NodeID(node)}
		return nil
	})
	return v
}

// counters writes INCRs as a node does: each a delta holding the node's
// count of the key, its total so far (by node and key).
type counters struct {
	start map[string]record.Version
	total map[string]int64
}

// incr increments key by by on l as node.
func (c *counters) incr(t *testing.T, l *testLocal, node uint64, key string, by int64) {
	t.Helper()
	if c.start == nil {
		c.start, c.total = map[string]record.Version{}, map[string]int64{}
	}
	v := l.version(node)
	id := fmt.Sprint(node, key)
	if _, ok := c.start[id]; !ok {
		c.start[id] = v
	}
	c.total[id] += by
	st := record.CounterState{KindVersion: v, Count: record.Count{Node: record.NodeID(node), Start: c.start[id].TS, Ver: v, Total: c.total[id]}}
	l.apply(t, key, record.Record{Typed: st.Typed()})
}

// hset writes field=val into the hash key, and adds by to the hash's
// counter count (HINCRBY's), on l as node.
func hset(t *testing.T, l *testLocal, node uint64, key, field, val, count string, by int64) {
	t.Helper()
	v := l.version(node)
	l.apply(t, key, record.Record{Typed: &record.Typed{Kind: record.KindHash, KindVersion: v,
		Fields: []record.Elem{{Name: []byte(field), Dot: v, Value: []byte(val)}},
		Counts: []record.Count{{Name: []byte(count), Node: record.NodeID(node), Start: v.TS, Ver: v, Total: by}}}})
}

// converged reports whether every node holds the same record of each key,
// each written.
func converged(keys []string, ls ...*testLocal) bool {
	for _, k := range keys {
		first := ls[0].db.Get([]byte(k))
		if !first.Written() {
			return false
		}
		for _, l := range ls[1:] {
			if !record.Equal(l.db.Get([]byte(k)), first) {
				return false
			}
		}
	}
	return true
}

// TestRollingUpgrade: a node of the build before counts' short form (one
// speaking only the protocols' old versions, strict about their encoding:
// a record in the new one is malformed to it, as it is to that build) and
// nodes of this build converge over push, catch-up from the log, Merkle
// repair and a snapshot, with strings, counters incremented on both and a
// hash, and none takes the other for a misbehaving peer.
func TestRollingUpgrade(t *testing.T) {
	n := newMemNet(t)
	old, lo := startMemMeshAs(t, n, record.Encoding1, nil)
	nw, ln := startMemMeshAs(t, n, record.Encoding2, nil, old.ID())
	waitFor(t, "the old and the new node linked, the new one synced", func() bool {
		return old.linked.Load() == 1 && nw.linked.Load() == 1 && nw.Ready()
	})
	pushEncoding := func(from, to *Mesh) record.Encoding {
		from.mu.Lock()
		defer from.mu.Unlock()
		if ps := from.peers[to.ID()]; ps != nil && ps.push != nil {
			return ps.push.enc
		}
		return 0
	}
	waitFor(t, "push streams both ways", func() bool { return pushEncoding(old, nw) != 0 && pushEncoding(nw, old) != 0 })
	if a, b := pushEncoding(old, nw), pushEncoding(nw, old); a != record.Encoding1 || b != record.Encoding1 {
		t.Fatalf("push streams carry encodings %d and %d, want the old node's, 1", a, b)
	}
	oldID, newID := old.cfg.Self, nw.cfg.Self
	var cs counters
	var keys []string
	check := func(what string, ls ...*testLocal) {
		t.Helper()
		waitFor(t, what, func() bool { return converged(keys, ls...) })
	}

	// Push, both ways: strings, a counter both increment, a hash.
	ln.set(t, newID, "s:new", "v1")
	lo.set(t, oldID, "s:old", "v2")
	cs.incr(t, ln, newID, "c:both", 5)
	cs.incr(t, lo, oldID, "c:both", 7)
	cs.incr(t, ln, newID, "c:both", -2)
	hset(t, ln, newID, "h:new", "f", "x", "n", 3)
	hset(t, lo, oldID, "h:old", "g", "y", "m", 4)
	keys = append(keys, "s:new", "s:old", "c:both", "h:new", "h:old")
	check("pushes converged", lo, ln)
	if got := ln.db.Get([]byte("c:both")).Typed.CountsSum(nil); got.Cmp(big.NewFloat(10)) != 0 {
		t.Fatalf("the counter both nodes incremented reads %v, want 10", got)
	}

	// Catch-up: the new node's push is lost, the next one shows the hole,
	// and the old node reads the new one's log; and the other way.
	for _, dir := range [][2]*Mesh{{nw, old}, {old, nw}} {
		from, to := dir[0], dir[1]
		lf, self := ln, newID
		if from == old {
			lf, self = lo, oldID
		}
		before := to.Info().CatchUpEntries
		n.losePushes(from.ID(), to.ID(), 1)
		// The lost write's key is not written again: only the log brings
		// it.
		k := fmt.Sprint("c:lost-", self)
		cs.incr(t, lf, self, k, 1)
		waitFor(t, "the push lost", func() bool { return n.lost(from.ID(), to.ID()) })
		cs.incr(t, lf, self, k+"-next", 1)
		keys = append(keys, k, k+"-next")
		check("caught up from the log", lo, ln)
		// Counted once the entries are merged, a moment after the keys
		// show.
		waitFor(t, "the entries read from the log counted", func() bool { return to.Info().CatchUpEntries > before })
	}

	// Merkle repair: writes another node made reach each by no push (a
	// node pushes only its own) and no log read; a session brings them.
	const third = 99
	cs.incr(t, ln, third, "c:third-new", 11)
	hset(t, ln, third, "h:third-new", "f", "z", "k", 6)
	cs.incr(t, lo, third+1, "c:third-old", 12)
	keys = append(keys, "c:third-new", "h:third-new", "c:third-old")
	repaired := old.Info().KeysRepaired + nw.Info().KeysRepaired
	if !old.runSession(nw.ID(), false) {
		t.Fatal("the old node's Merkle session with the new one failed")
	}
	check("repaired by Merkle", lo, ln)
	waitFor(t, "the session's 3 repairs counted", func() bool { return old.Info().KeysRepaired+nw.Info().KeysRepaired-repaired >= 3 })
	if lo.MerkleRoot() != ln.MerkleRoot() {
		t.Fatal("roots differ once every key is equal")
	}
	// And a session the new node starts, the old one answering.
	cs.incr(t, lo, third+1, "c:third-old", 1)
	hset(t, lo, third+1, "h:third-old", "g", "w", "k", 2)
	cs.incr(t, ln, third, "c:third-new", 1)
	keys = append(keys, "h:third-old")
	repaired = old.Info().KeysRepaired + nw.Info().KeysRepaired
	if !nw.runSession(old.ID(), false) {
		t.Fatal("the new node's Merkle session with the old one failed")
	}
	check("repaired by the new node's session", lo, ln)
	waitFor(t, "the new node's session's 3 repairs counted", func() bool { return old.Info().KeysRepaired+nw.Info().KeysRepaired-repaired >= 3 })

	// Snapshots: an empty node of each build joins a node of the other,
	// and streams its keyspace.
	old2, lo2 := startMemMeshAs(t, n, record.Encoding1, nil, nw.ID())
	nw2, ln2 := startMemMeshAs(t, n, record.Encoding2, nil, old.ID())
	check("bootstrapped", lo, ln, lo2, ln2)
	for _, m := range []*Mesh{old2, nw2} {
		waitFor(t, "keys from a snapshot counted", func() bool { return m.Info().BootstrapKeys > 0 })
	}

	for _, m := range []*Mesh{old, nw, old2, nw2} {
		if in := m.Info(); in.BadMessages != 0 {
			t.Fatalf("%s took %d messages for malformed", m.ID(), in.BadMessages)
		}
	}
}

// TestOldStreamRefusesNewEncoding: a record in the new encoding on a
// stream of an old version is malformed, as the build before finds it:
// the test above would see it.
func TestOldStreamRefusesNewEncoding(t *testing.T) {
	st := record.CounterState{KindVersion: record.Version{TS: 1 << 40, Node: 7}, Count: record.Count{Node: 7, Start: 1 << 40, Ver: record.Version{TS: 1 << 40, Node: 7}, Total: 1}}
	rec := record.Record{Typed: st.Typed()}
	msg := appendPushMsg(nil, 1, 0, 1, 0, 0, []merkle.Record{{Key: []byte("c"), Payload: record.Encode(rec)}})
	decode := carrying(record.Encoding1, decodePushMsg, func(pm pushMsg) []merkle.Record { return pm.recs })
	if _, err := decode(msg); err == nil {
		t.Fatal("a push of the new encoding decoded on an old stream")
	}
	old, n, err := pushAs(msg, record.Encoding1)
	if err != nil || n != 1 {
		t.Fatalf("push re-encoded: %d records, %v", n, err)
	}
	pm, err := decode(old)
	if err != nil {
		t.Fatalf("the push re-encoded for an old stream: %v", err)
	}
	got, err := record.Decode(pm.recs[0].Payload)
	if err != nil || !record.Equal(got, rec) {
		t.Fatalf("re-encoded record: %+v, %v; want %+v", got, err, rec)
	}
	if _, err := carrying(record.Encoding2, decodePushMsg, func(pm pushMsg) []merkle.Record { return pm.recs })(old); err != nil {
		t.Fatalf("a new stream refused the old encoding: %v", err)
	}
}

// lockedBuffer is a log's output, read while nodes write to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// futurePeer is a node of a later build that speaks only later versions of
// the protocols that carry records: it refuses every stream.
type futurePeer struct{}

func (futurePeer) Protocols() []protocol.ID {
	return []protocol.ID{"/redmesh/push/6", "/redmesh/log/4", "/redmesh/merkle/5", "/redmesh/snapshot/3", protoAck, protoPeers}
}
func (futurePeer) Stream(_ protocol.ID, s Stream) { s.Reset() }
func (futurePeer) LinkUp(peer.ID, string)         {}
func (futurePeer) LinkDown(peer.ID)               {}
func (futurePeer) Found(peer.ID)                  {}

// TestUnknownVersionRefused: a peer that speaks only versions this node
// does not know is refused on each such protocol with one log line naming
// both sides' versions, and is neither taken for malformed nor banned.
func TestUnknownVersionRefused(t *testing.T) {
	n := newMemNet(t)
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	fid, _ := peer.IDFromPrivateKey(key)
	if err := n.transport(fid).Start(futurePeer{}); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	m, _ := startMemMesh(t, n, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&out, nil)) }, fid)
	lines := func(proto string) []string {
		var got []string
		for l := range strings.Lines(out.String()) {
			if strings.Contains(l, "peer speaks no version of a mesh protocol this node speaks") && strings.Contains(l, "protocol="+proto+" ") {
				got = append(got, l)
			}
		}
		return got
	}
	waitFor(t, "the push stream refused", func() bool { return len(lines("push")) > 0 })
	want := `ours="/redmesh/push/5 /redmesh/push/4" theirs="/redmesh/ack/3 /redmesh/log/4 /redmesh/merkle/5 /redmesh/peers/1 /redmesh/push/6 /redmesh/snapshot/3"`
	if l := lines("push")[0]; !strings.Contains(l, want) || !strings.Contains(l, "peer="+fid.String()) {
		t.Fatalf("the line does not name the peer and both sides' versions:\n%s\nwant %s", l, want)
	}
	for range 2 {
		if m.runSession(fid, false) {
			t.Fatal("a Merkle session with a peer of no common version completed")
		}
	}
	if got := lines("merkle"); len(got) != 1 || !strings.Contains(got[0], `ours="/redmesh/merkle/4 /redmesh/merkle/3"`) {
		t.Fatalf("merkle refused with %d lines, want one naming ours:\n%s", len(got), out.String())
	}
	if len(lines("push")) != 1 {
		t.Fatalf("the push refusal logged %d times on one link:\n%s", len(lines("push")), out.String())
	}
	if in := m.Info(); in.BadMessages != 0 || !m.tr.Connected(fid) {
		t.Fatalf("the peer taken for malformed (%d) or cut off (linked %v)", in.BadMessages, m.tr.Connected(fid))
	}
	if s := out.String(); strings.Contains(s, "misbehaving") || strings.Contains(s, "corrupt") {
		t.Fatalf("refused as a decode error:\n%s", s)
	}
}

// TestVersionsOverLibp2p: over libp2p's own negotiation, a mesh opens its
// push stream to a host serving only the old version in that version, and
// to one serving only a later one not at all, saying so with what identify
// told of the peer's protocols.
func TestVersionsOverLibp2p(t *testing.T) {
	var out lockedBuffer
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	a, la := startTestMeshWith(t, key, "/ip4/127.0.0.1/tcp/0", func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&out, nil)) })
	ai, err := peer.AddrInfoFromString(a.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan protocol.ID, 1)
	host := func(protos ...protocol.ID) peer.ID {
		y, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { y.Close() })
		for _, p := range protos {
			y.SetStreamHandler(p, func(s network.Stream) {
				select {
				case opened <- s.Protocol():
				default:
				}
				s.Reset()
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := y.Connect(ctx, *ai); err != nil {
			t.Fatal(err)
		}
		return y.ID()
	}
	old := host(protoPush4)
	// The version is chosen from what identify told; the peer learns it
	// with the stream's first bytes, a push.
	waitFor(t, "the push stream to the old peer", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		ps := a.peers[old]
		return ps != nil && ps.push != nil
	})
	a.mu.Lock()
	enc := a.peers[old].push.enc
	a.mu.Unlock()
	if enc != record.Encoding1 {
		t.Fatalf("the push stream to the old peer carries encoding %d", enc)
	}
	la.set(t, a.cfg.Self, "k", "v")
	select {
	case p := <-opened:
		if p != protoPush4 {
			t.Fatalf("push stream opened in %s, want %s", p, protoPush4)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no push stream opened to a peer of the old version")
	}
	future := host("/redmesh/push/6")
	waitFor(t, "the later version refused", func() bool {
		return strings.Contains(out.String(), "peer="+future.String()+" protocol=push")
	})
	for l := range strings.Lines(out.String()) {
		if strings.Contains(l, "peer="+future.String()+" protocol=push") &&
			!strings.Contains(l, `ours="/redmesh/push/5 /redmesh/push/4" theirs=/redmesh/push/6`) {
			t.Fatalf("the line does not name both sides' versions: %s", l)
		}
	}
}
