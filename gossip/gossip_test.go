package gossip

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	identifypb "github.com/libp2p/go-libp2p/p2p/protocol/identify/pb"
	"github.com/libp2p/go-msgio/pbio"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

func TestProtectedMode(t *testing.T) {
	open := Config{Listen: []string{"/ip4/0.0.0.0/tcp/0"}}
	if _, _, err := open.listenAddrs(); err == nil || !strings.Contains(err.Error(), "--insecure-open-mesh") {
		t.Fatalf("open mesh beyond loopback: err %v, want a refusal naming --insecure-open-mesh", err)
	}
	for _, c := range []Config{
		{Listen: []string{"/ip4/0.0.0.0/tcp/0"}, InsecureOpenMesh: true},
		{Listen: []string{"/ip4/0.0.0.0/tcp/0"}, AllowPeers: []string{"x"}},
		{Listen: []string{"/ip4/0.0.0.0/tcp/0"}, PSK: make([]byte, 32)},
		{Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"}},
	} {
		if _, _, err := c.listenAddrs(); err != nil {
			t.Errorf("%+v: %v", c.Listen, err)
		}
	}
	// Defaults: loopback unless protected.
	var d Config
	addrs, _, err := d.listenAddrs()
	if err != nil || len(addrs) != 2 || !isLoopback(addrs[0]) {
		t.Fatalf("default addrs %v, %v", addrs, err)
	}
	p := Config{PSK: make([]byte, 32)}
	addrs, notes, err := p.listenAddrs()
	if err != nil || len(addrs) != 1 || isQUIC(addrs[0]) || isLoopback(addrs[0]) {
		t.Fatalf("PSK default addrs %v, %v", addrs, err)
	}
	if !strings.Contains(strings.Join(notes, " "), "QUIC") {
		t.Fatalf("dropping QUIC is not logged: %q", notes)
	}
}

func TestReadFrameBounded(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeFrame(w, []byte("hello"))
	w.Flush()
	var buf bytes.Buffer
	got, err := readFrame(bufio.NewReader(bytes.NewReader(b.Bytes())), 16, &buf)
	if err != nil || string(got) != "hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	// A huge announced length is refused before anything is read or allocated.
	huge := binary.AppendUvarint(nil, 1<<62)
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(huge)), maxFrame, &buf); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("huge frame: %v", err)
	}
	// A length within the limit but with few bytes behind it costs only those bytes.
	short := append(binary.AppendUvarint(nil, maxFrame-1), 1, 2, 3)
	buf = bytes.Buffer{}
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(short)), maxFrame, &buf); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short frame: %v", err)
	}
	if buf.Cap() > 1<<20 {
		t.Fatalf("allocated %d bytes for a 3-byte frame", buf.Cap())
	}
}

func TestPushMessage(t *testing.T) {
	v := record.Version{TS: 1 << 20, Node: 7}
	rec := record.Record{Value: record.Value{Version: v, Data: []byte("v")}, Expiry: record.Expiry{Version: v}}
	recs := []merkle.Record{{Key: []byte("k"), Payload: record.Encode(rec)}}
	b := appendPushMsg(nil, 9, 3, 5, 0, 0, recs)
	pm, err := decodePushMsg(b)
	if err != nil || pm.epoch != 9 || pm.prev != 3 || pm.to != 5 || len(pm.recs) != 1 || string(pm.recs[0].Key) != "k" {
		t.Fatalf("round trip: %+v, %v", pm, err)
	}
	// Every prefix, a wrong version, an empty range, a bad record: errors, never a panic.
	for i := range b {
		if _, err := decodePushMsg(b[:i]); err == nil {
			t.Fatalf("prefix %d decoded", i)
		}
	}
	bad := append([]byte(nil), b...)
	bad[0] = pushVersion - 1
	if _, err := decodePushMsg(bad); err == nil {
		t.Fatal("wrong version accepted")
	}
	// A relayed push carries its origin.
	b = appendPushMsg(nil, 9, 3, 5, 4, 77, recs)
	pm, err = decodePushMsg(b)
	if err != nil || pm.hops != 4 || pm.origin != 77 || pm.to != 5 || len(pm.recs) != 1 {
		t.Fatalf("relayed round trip: %+v, %v", pm, err)
	}
	for i := range b {
		if _, err := decodePushMsg(b[:i]); err == nil {
			t.Fatalf("relayed prefix %d decoded", i)
		}
	}
	if _, err := decodePushMsg(appendPushMsg(nil, 9, 5, 5, 0, 0, recs)); err == nil {
		t.Fatal("empty range accepted")
	}
	if _, err := decodePushMsg(appendPushMsg(nil, 9, 3, 5, 0, 0, []merkle.Record{{Key: []byte("k"), Payload: []byte{0xff}}})); err == nil {
		t.Fatal("bad record accepted")
	}
	// A huge record count is refused without allocating.
	huge := append([]byte{pushVersion, 1, 1, 2, 0, mesh.KindPush}, binary.AppendUvarint(nil, 1<<40)...)
	if _, err := decodePushMsg(huge); err == nil {
		t.Fatal("huge count accepted")
	}
}

func TestPeerList(t *testing.T) {
	var ais []peer.AddrInfo
	for range 3 {
		_, pub, _ := crypto.GenerateEd25519Key(rand.Reader)
		id, _ := peer.IDFromPublicKey(pub)
		ais = append(ais, peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}})
	}
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(ais)))
	for _, ai := range ais {
		b = appendBytes(b, []byte(ai.ID))
		b = binary.AppendUvarint(b, 1)
		b = appendBytes(b, ai.Addrs[0].Bytes())
	}
	got, err := decodePeerList(b)
	if err != nil || len(got) != 3 || got[1].ID != ais[1].ID || len(got[2].Addrs) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	for i := range b {
		if _, err := decodePeerList(b[:i]); err == nil && i > 0 {
			t.Fatalf("prefix %d decoded", i)
		}
	}
	if _, err := decodePeerList(binary.AppendUvarint(nil, 1<<40)); err == nil {
		t.Fatal("huge count accepted")
	}
}

// testLocal is a node for the mesh: a keyspace on a log, with a Merkle tree
// kept by the commit hook, merging through keyspace.Tx.Apply as a node does.
type testLocal struct {
	log  *wal.Store
	db   *keyspace.DB
	mu   sync.Mutex
	tree *merkle.Tree
	m    *Mesh
	// last is the last timestamp handed out (stamp), under the write lock.
	last hlc.Timestamp
}

// stamp is the next timestamp for a local write or a sample of the log
// (Frontier), called under the keyspace's write lock: as a node's clock,
// it follows the wall clock and only goes up, so writes are stamped in log
// order and every write after a sample is stamped after it, which the
// stable time relies on.
func (l *testLocal) stamp() hlc.Timestamp {
	l.last = max(l.last+1, hlc.FromTime(time.Now()))
	return l.last
}

// mv is a record's versions as the tree takes them, a typed state's digest
// among them, as the node's (mesh.MerkleVersions).
func mv(vs [3]record.Version) []merkle.Version { return mesh.MerkleVersions(vs) }

func (l *testLocal) committed(es []wal.Entry) {
	l.mu.Lock()
	for _, e := range es {
		l.tree.Update(e.Key, mv(e.Prev), mv(e.Now))
	}
	l.mu.Unlock()
	if l.m != nil {
		l.m.Committed(es)
	}
}

func (l *testLocal) ApplyRemote(ctx context.Context, recs []merkle.Record, _ hlc.Timestamp) (int, error) {
	n := 0
	err := l.db.Update(ctx, func(tx *keyspace.Tx) error {
		n = 0
		for _, r := range recs {
			rec, err := record.Decode(r.Payload)
			if err != nil {
				return err
			}
			if _, ch, err := tx.Apply(r.Key, rec); err != nil {
				return err
			} else if ch {
				n++
			}
		}
		return nil
	})
	return n, err
}

func (l *testLocal) MerkleRoot() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tree.Root()
}

func (l *testLocal) MerkleLocal() merkle.Local { return treeLocal{l} }

func (l *testLocal) SnapshotRange(from uint64, fn func(h uint64, key []byte, rec record.Record) bool) (uint64, bool) {
	return l.db.Table().SnapshotRange(from, fn)
}

func (l *testLocal) SnapshotSize() (int64, int64) { return l.db.Table().SnapshotSize() }

func (l *testLocal) Empty() bool {
	n, _ := l.db.Table().SnapshotSize()
	return n == 0
}

type treeLocal struct{ l *testLocal }

func (t treeLocal) Digest(level int, idx uint32) uint64 {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	return t.l.tree.Digest(level, idx)
}

func (t treeLocal) AppendEntries(dst []merkle.Entry, b uint32) ([]merkle.Entry, error) {
	lo, hi := merkle.DefaultShape.BucketRange(b)
	t.l.db.Table().EachInHashRange(lo, hi, func(k []byte, rec record.Record) bool {
		if vs := mv(rec.Versions()); vs != nil {
			dst = append(dst, merkle.Entry{Key: bytes.Clone(k), Versions: vs})
		}
		return true
	})
	return dst, nil
}

func (t treeLocal) Payload(key []byte) ([]byte, error) {
	rec := t.l.db.Get(key)
	if !rec.Written() {
		return nil, nil
	}
	return record.Encode(rec), nil
}

func nodeIDOf(p peer.ID) uint64 { return binary.BigEndian.Uint64([]byte(p)[len(p)-8:]) }

func startTestMesh(t *testing.T, peers ...string) (*Mesh, *testLocal) {
	t.Helper()
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	return startTestMeshAt(t, key, "/ip4/127.0.0.1/tcp/0", peers...)
}

func startTestMeshAt(t *testing.T, key crypto.PrivKey, listen string, peers ...string) (*Mesh, *testLocal) {
	t.Helper()
	return startTestMeshWith(t, key, listen, nil, peers...)
}

// newTestLocal is a store in a directory of the test's: a log, the
// keyspace over it and its Merkle tree.
func newTestLocal(t *testing.T) *testLocal {
	t.Helper()
	l := &testLocal{}
	l.tree, _ = merkle.NewTree(merkle.DefaultShape)
	quiet := slog.New(slog.DiscardHandler)
	s, err := wal.Open(wal.Options{Dir: filepath.Join(t.TempDir(), "d"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	db, err := keyspace.Open(keyspace.Options{Log: s, OnCommit: l.committed, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	l.log, l.db = s, db
	t.Cleanup(func() { db.Close(); s.Close() })
	return l
}

// startTestMeshWith starts a mesh whose config mod changes first (nil: none).
func startTestMeshWith(t *testing.T, key crypto.PrivKey, listen string, mod func(*Config), peers ...string) (*Mesh, *testLocal) {
	t.Helper()
	id, _ := peer.IDFromPrivateKey(key)
	l := newTestLocal(t)
	s := l.log
	cfg := Config{
		Listen: []string{listen}, Peers: peers, SyncInterval: 100 * time.Millisecond,
		AckInterval: time.Hour, // acknowledgements only when a WAIT asks
		Identity:    key, Self: nodeIDOf(id), NodeIDOf: nodeIDOf,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := Start(cfg, s, l)
	if err != nil {
		t.Fatal(err)
	}
	l.m = m
	t.Cleanup(func() { m.Close() }) // before the store's (newTestLocal)
	return m, l
}

func (l *testLocal) set(t *testing.T, self uint64, key, val string) {
	t.Helper()
	err := l.db.Update(context.Background(), func(tx *keyspace.Tx) error {
		v := record.Version{TS: l.stamp(), Node: record.NodeID(self)}
		_, _, err := tx.Apply([]byte(key), record.Record{Value: record.Value{Version: v, Data: []byte(val)}, Expiry: record.Expiry{Version: v}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTwoMeshes: push, acknowledgements and Merkle sessions between two
// in-process meshes over real libp2p on loopback.
func TestTwoMeshes(t *testing.T) {
	a, la := startTestMesh(t)
	la.set(t, a.cfg.Self, "before", "1") // present before the link: b, empty, bootstraps from a snapshot
	b, lb := startTestMesh(t, a.Addrs()[0])
	waitFor(t, "the key written before the link", func() bool {
		r := lb.db.Get([]byte("before"))
		return string(r.Value.Data) == "1"
	})
	la.set(t, a.cfg.Self, "pushed", "2")
	waitFor(t, "the pushed key", func() bool {
		r := lb.db.Get([]byte("pushed"))
		return string(r.Value.Data) == "2"
	})
	ctx := context.Background()
	if n := a.WaitAcks(ctx, a.LastLocalSeq(), 1, 10*time.Second); n != 1 {
		t.Fatalf("WaitAcks = %d, want 1", n)
	}
	if n := b.WaitAcks(ctx, b.LastLocalSeq(), 5, 50*time.Millisecond); n != 1 {
		t.Fatalf("WaitAcks for 5 = %d, want 1 after the timeout", n)
	}
	waitFor(t, "equal roots", func() bool { return la.MerkleRoot() == lb.MerkleRoot() })
	in := a.Info()
	if len(in.Peers) != 1 || !in.Peers[0].Connected || in.Peers[0].Unacked != 0 {
		t.Fatalf("info: %+v", in)
	}
}

// TestPeerConnectingAtStart: a peer that connects the moment a node starts
// listening is linked like any other: the node lists it and pushes to it.
func TestPeerConnectingAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostport := l.Addr().String()
	l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(key)
	b, lb := startTestMesh(t)
	dialed := make(chan error, 1)
	go func() {
		// Connect as soon as the port accepts: poll with plain TCP, since
		// a failed libp2p dial would back off for seconds.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Microsecond) {
			if c, err := net.Dial("tcp", hostport); err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				dialed <- errors.New("the node never listened")
				return
			}
		}
		addr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
		dialed <- b.tr.(*p2p).h.Connect(context.Background(), peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{addr}})
	}()
	a, la := startTestMeshAt(t, key, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	if err := <-dialed; err != nil {
		t.Fatalf("connect at start: %v", err)
	}
	waitFor(t, "the node to list the early peer as connected", func() bool {
		in := a.Info()
		return len(in.Peers) == 1 && in.Peers[0].Connected
	})
	la.set(t, a.cfg.Self, "pushed", "1")
	waitFor(t, "the pushed key", func() bool {
		r := lb.db.Get([]byte("pushed"))
		return string(r.Value.Data) == "1"
	})
	if got := a.Info(); got.PushRecords == 0 {
		t.Fatalf("the key reached the peer but not by push: %+v", got)
	}
}

func TestReadFrameErrors(t *testing.T) {
	var buf bytes.Buffer
	// A stream that ends between frames is io.EOF, not a malformed frame.
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(nil)), 16, &buf); err != io.EOF {
		t.Fatalf("empty stream: %v", err)
	}
	// A stream that fails is that failure, not a malformed frame.
	boom := errors.New("stream reset")
	if _, err := readFrame(bufio.NewReader(io.MultiReader(bytes.NewReader([]byte{0x80}), errReader{boom})), 16, &buf); !errors.Is(err, boom) || errors.Is(err, errMalformedFrame) {
		t.Fatalf("failing stream: %v", err)
	}
	// An over-long length is malformed.
	long := bytes.Repeat([]byte{0xff}, 11)
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(long)), 16, &buf); !errors.Is(err, errMalformedFrame) {
		t.Fatalf("overlong varint: %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestPushOrigin: a push from its origin's stream is merged and moves what
// we acknowledge of the origin's log, and nothing of another's.
func TestPushOrigin(t *testing.T) {
	m, l := startTestMesh(t)
	var ids []peer.ID
	for range 2 {
		_, pub, _ := crypto.GenerateEd25519Key(rand.Reader)
		id, _ := peer.IDFromPublicKey(pub)
		ids = append(ids, id)
	}
	origin, other := ids[0], ids[1]
	v := record.Version{TS: 1 << 30, Node: record.NodeID(nodeIDOf(origin))}
	rec := record.Record{Value: record.Value{Version: v, Data: []byte("pushed")}, Expiry: record.Expiry{Version: v}}
	pm, err := decodePushMsg(appendPushMsg(nil, 7, 0, 2, 0, 0, []merkle.Record{{Key: []byte("k"), Payload: record.Encode(rec)}}))
	if err != nil {
		t.Fatal(err)
	}
	m.merge(origin, pm)
	if r := l.db.Get([]byte("k")); string(r.Value.Data) != "pushed" {
		t.Fatal("push not merged")
	}
	m.mu.Lock()
	prog, elsewhere := m.r.Peer(m.midOf(origin)).Progress, m.r.Peer(m.midOf(other)).Progress
	m.mu.Unlock()
	if prog.Epoch != 7 || prog.Acked != 2 {
		t.Fatalf("origin's progress: %+v", prog)
	}
	if elsewhere.Epoch != 0 || elsewhere.Acked != 0 {
		t.Fatalf("another peer's progress moved: %+v", elsewhere)
	}
}

// TestRedialBackoff: a failed dial and a link that closes at once (a peer
// refusing us after the handshake) both back off, doubling up to the cap,
// each wait drawn between half the backoff and all of it; a link that
// lasted resets the backoff so the peer is redialled within a second.
func TestRedialBackoff(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	within := func(what string, next, from, to time.Time) {
		t.Helper()
		if next.Before(from) || next.After(to) {
			t.Fatalf("%s: next dial at %v, want within [%v, %v]", what, next.Sub(now), from.Sub(now), to.Sub(now))
		}
	}
	d := &dialState{}
	d.failed(now)
	if d.backoff != minBackoff {
		t.Fatalf("first failure: backoff %v", d.backoff)
	}
	within("first failure", d.next, now.Add(minBackoff/2), now.Add(minBackoff))
	d.upSince = now.Add(time.Second)
	closed := now.Add(time.Second + 10*time.Millisecond)
	d.linkDown(closed) // refused right after the handshake
	if d.backoff != 2*minBackoff {
		t.Fatalf("a link closed at once: backoff %v, want %v", d.backoff, 2*minBackoff)
	}
	within("a link closed at once", d.next, closed.Add(minBackoff), closed.Add(2*minBackoff))
	for range 10 {
		d.failed(now)
	}
	if d.backoff != maxBackoff {
		t.Fatalf("backoff %v, want the cap %v", d.backoff, maxBackoff)
	}
	within("at the cap", d.next, now.Add(maxBackoff/2), now.Add(maxBackoff))
	d.upSince = now
	d.linkDown(now.Add(stableLink))
	if d.backoff != 0 {
		t.Fatalf("a stable link's end: backoff %v", d.backoff)
	}
	within("a stable link's end", d.next, now.Add(stableLink), now.Add(stableLink+minBackoff))
}

// TestRedialJitter: peers that fail, or lose a link, at the same moment do
// not all redial at the same moment.
func TestRedialJitter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	failed, lost := map[time.Time]bool{}, map[time.Time]bool{}
	for range 100 {
		d := &dialState{backoff: 8 * time.Second}
		d.failed(now)
		failed[d.next] = true
		d = &dialState{upSince: now.Add(-time.Hour)}
		d.linkDown(now)
		lost[d.next] = true
	}
	if len(failed) < 90 || len(lost) < 90 {
		t.Fatalf("100 peers redial at %d moments after failing together, %d after losing their links together", len(failed), len(lost))
	}
}

// TestRedialBackoffAfterLostLink: a peer whose stable link closed (a
// partition, a restart) is redialled at least every maxBackoffLost for
// lostRecently, so the mesh notices a heal within seconds; after that it
// backs off to the full cap like any unreachable peer.
func TestRedialBackoffAfterLostLink(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	d := &dialState{upSince: now}
	lost := now.Add(time.Hour)
	d.linkDown(lost)
	at := lost
	for at.Before(lost.Add(lostRecently - maxBackoffLost)) {
		d.failed(at)
		if gap := d.next.Sub(at); gap > maxBackoffLost {
			t.Fatalf("%v after the link closed: next dial in %v, want at most %v", at.Sub(lost), gap, maxBackoffLost)
		}
		at = d.next.Add(10 * time.Second) // each dial waits out its timeout
	}
	for range 10 {
		at = at.Add(d.backoff + 10*time.Second)
		d.failed(at)
	}
	if d.backoff != maxBackoff {
		t.Fatalf("%v after the link closed: backoff %v, want the cap %v", at.Sub(lost), d.backoff, maxBackoff)
	}
	// A link refused right after its handshake is not a lost stable link.
	r := &dialState{upSince: now}
	for i := range 10 {
		r.upSince = now.Add(time.Duration(i) * time.Minute)
		r.linkDown(r.upSince.Add(10 * time.Millisecond))
	}
	if r.backoff != maxBackoff {
		t.Fatalf("a peer refusing us after the handshake: backoff %v, want the cap %v", r.backoff, maxBackoff)
	}
}

// Frontier samples the log with the clock the test's writes are stamped
// from (stamp).
func (l *testLocal) Frontier() (uint64, hlc.Timestamp, error) {
	var ts hlc.Timestamp
	seq, err := l.db.Frontier(func() { ts = l.stamp() })
	return seq, ts, err
}

// TestStableTimeAndForget: two meshes agree on a stable time past their
// writes; with one gone, the other's stable time waits for it, names it,
// and moves on once it is forgotten, which survives a restart.
func TestStableTimeAndForget(t *testing.T) {
	fast := func(c *Config) { c.AckInterval = 100 * time.Millisecond }
	keyA, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	keyB, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	a, la := startTestMeshWith(t, keyA, "/ip4/127.0.0.1/tcp/0", fast)
	b, lb := startTestMeshWith(t, keyB, "/ip4/127.0.0.1/tcp/0", fast, a.Addrs()[0])
	la.set(t, a.cfg.Self, "k", "1")
	waitFor(t, "the write at b", func() bool { return string(lb.db.Get([]byte("k")).Value.Data) == "1" })
	t0 := hlc.FromTime(time.Now())
	waitFor(t, "a stable time past t0 at both", func() bool { return a.Stable() > t0 && b.Stable() > t0 })

	idB := b.ID()
	b.Close()
	waitFor(t, "a to name b as what holds collection back", func() bool { return a.Info().Holder == idB.String() })
	held := a.Stable()
	if err := a.Forget(idB); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stable time to move on without b", func() bool { return a.Stable() > held })
	if in := a.Info(); in.Forgotten != 1 {
		t.Fatalf("forgotten members: %d", in.Forgotten)
	}
	if ids, ok, err := a.store.GetMeta(metaForgot); err != nil || !ok || !strings.Contains(string(ids), idB.String()) {
		t.Fatalf("forgotten members saved as %q, %v, %v", ids, ok, err)
	}
}

func (l *testLocal) SetAsideBelow(hlc.Timestamp) (int, error) { return 0, nil }

// TestPeerExchangeListsDiallerAddrs: a peer that dialled a node is listed
// in the node's peer exchange with the address it listens on, even when
// asked before identify on that link has told it: a node that learns of a
// peer with no address has nothing to dial.
func TestPeerExchangeListsDiallerAddrs(t *testing.T) {
	a, _ := startTestMesh(t)
	y, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { y.Close() })
	listen := y.Addrs()[0]
	// y answers identify only when released: until then the node knows
	// nothing of where y listens.
	release := make(chan struct{})
	y.SetStreamHandler(identify.ID, func(s network.Stream) {
		defer s.Close()
		<-release
		pbio.NewDelimitedWriter(s).WriteMsg(&identifypb.Identify{ListenAddrs: [][]byte{listen.Bytes()}})
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	aAddr, err := peer.AddrInfoFromString(a.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Connect(context.Background(), *aAddr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node to link y", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		ps := a.peers[y.ID()]
		return ps != nil && ps.connected
	})
	listed := make(chan []byte, 1)
	go func() { listed <- a.appendPeerList(nil, true) }()
	var b []byte
	select {
	case b = <-listed: // answered before identify: y's address is missing
	case <-time.After(500 * time.Millisecond):
		close(release)
		b = <-listed
	}
	ais, err := decodePeerList(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ais) != 2 || ais[1].ID != y.ID() || !slices.ContainsFunc(ais[1].Addrs, listen.Equal) {
		t.Fatalf("peer exchange lists %v, want the node and %s at %s", ais, y.ID(), listen)
	}
}
