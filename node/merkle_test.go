package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

func openNode(t *testing.T, dir string) (*Node, *redis.Client) {
	t.Helper()
	return openNodeAs(t, dir, false)
}

// openPeer is openNode for a node that reconciles with others in memory:
// without a mesh but as if it remembered peers, so nothing is stable and it
// does not collect as a node alone does.
func openPeer(t *testing.T, dir string) (*Node, *redis.Client) {
	t.Helper()
	return openNodeAs(t, dir, true)
}

func openNodeAs(t *testing.T, dir string, withPeer bool) (*Node, *redis.Client) {
	t.Helper()
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// Without a mesh, and no peer remembered, the node is alone and
	// collects at once.
	cfg.Mesh.Disabled = true
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.rememberedPeers.Store(withPeer)
	go n.Serve(context.Background())
	c := redis.NewClient(&redis.Options{Addr: n.Addr().String(), Protocol: 2})
	t.Cleanup(func() { c.Close(); n.Close() })
	return n, c
}

// reconcile runs one Merkle session between two nodes in memory, each side
// merging what it receives through ApplyRemote.
func reconcile(t *testing.T, a, b *Node) merkle.Stats {
	t.Helper()
	sa, err := merkle.NewInitiator(merkle.Config{Shape: merkle.DefaultShape, Local: a.MerkleLocal(), Salt: rand.Uint64()})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := merkle.NewResponder(merkle.Config{Shape: merkle.DefaultShape, Local: b.MerkleLocal()})
	if err != nil {
		t.Fatal(err)
	}
	apply := func(n *Node) func(merkle.Record) error {
		return func(r merkle.Record) error {
			_, err := n.ApplyRemote(context.Background(), []merkle.Record{r}, 0)
			return err
		}
	}
	st, err := merkle.Drive(merkle.Peer{Session: sa, Apply: apply(a)}, merkle.Peer{Session: sb, Apply: apply(b)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestMerkleRepairsTwoNodes writes diverging data (overlapping keys,
// deletes, expiries) to two real nodes, repairs them with one session, and
// checks that roots and every record agree, and that a restart rebuilds the
// same root.
func TestMerkleRepairsTwoNodes(t *testing.T) {
	ctx := context.Background()
	dirA := t.TempDir()
	a, ca := openPeer(t, dirA)
	b, cb := openPeer(t, t.TempDir())
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		k := fmt.Sprintf("k%d", r.IntN(1500))
		c := ca
		if r.IntN(2) == 0 {
			c = cb
		}
		switch r.IntN(5) {
		case 0:
			c.Del(ctx, k)
		case 1:
			c.Expire(ctx, k, time.Hour)
		default:
			c.Set(ctx, k, fmt.Sprint("v", i), 0)
		}
	}
	if a.MerkleRoot() == b.MerkleRoot() {
		t.Fatal("diverged nodes share a root")
	}
	st := reconcile(t, a, b)
	if a.MerkleRoot() != b.MerkleRoot() {
		t.Fatalf("roots differ after a session (%+v)", st)
	}
	if st.RoundTrips > 5 {
		t.Errorf("%d round trips", st.RoundTrips)
	}
	for i := 0; i < 1500; i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		ra := a.db.Get(k)
		rb := b.db.Get(k)
		if !record.Equal(ra, rb) {
			t.Fatalf("%s: %+v vs %+v", k, ra, rb)
		}
	}
	// Equal nodes: one round trip.
	if st := reconcile(t, a, b); st.RoundTrips != 1 {
		t.Fatalf("equal nodes took %d round trips", st.RoundTrips)
	}

	root := a.MerkleRoot()
	a.Close()
	a2, _ := openPeer(t, dirA)
	if a2.MerkleRoot() != root {
		t.Fatalf("root after restart %x, before %x", a2.MerkleRoot(), root)
	}
}

// TestApplyRemoteLogsRefusalsOncePerBatch: a peer whose clock runs ahead
// sends all its writes too far ahead; the node says so once per batch, not
// once per record.
func TestApplyRemoteLogsRefusalsOncePerBatch(t *testing.T) {
	var log syncBuffer
	n, err := Open(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ahead := record.Version{TS: hlc.FromTime(time.Now().Add(time.Hour)), Node: 42}
	var recs []merkle.Record
	for i := range 100 {
		key := fmt.Sprintf("k%d", i)
		recs = append(recs, merkle.Record{Key: []byte(key), Payload: record.Encode(record.Record{
			Value: record.Value{Version: ahead, Data: []byte(key)}, Expiry: record.Expiry{Version: ahead}})})
	}
	if _, err := n.ApplyRemote(context.Background(), recs, 0); !errors.Is(err, hlc.ErrClockSkew) {
		t.Fatalf("error %v, want the clock's refusal", err)
	}
	if got := strings.Count(log.String(), "refused remote record"); got != 1 || !strings.Contains(log.String(), "count=100") {
		t.Fatalf("%d log lines about refused records, want 1 with count=100:\n%s", got, log.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestApplyRemoteRefusesSkewedClock(t *testing.T) {
	n, _ := openNode(t, t.TempDir())
	ahead := record.Version{TS: hlc.FromTime(time.Now().Add(time.Hour)), Node: 42}
	ok := record.Version{TS: hlc.FromTime(time.Now()), Node: 42}
	mk := func(v record.Version, val string) merkle.Record {
		return merkle.Record{Key: []byte(val), Payload: record.Encode(record.Record{
			Value: record.Value{Version: v, Data: []byte(val)}, Expiry: record.Expiry{Version: v}})}
	}
	applied, err := n.ApplyRemote(context.Background(), []merkle.Record{mk(ok, "before"), mk(ahead, "future"), mk(ok, "now")}, 0)
	// The caller learns which record was refused, so that it does not
	// count what brought the batch as applied.
	refused, isRefused := errors.AsType[*mesh.RefusedError](err)
	if !isRefused || refused.First != 1 || refused.Count != 1 {
		t.Fatalf("error %v, want a mesh.RefusedError for the record at 1", err)
	}
	if applied != 2 || n.clock.Refused() != 1 {
		t.Fatalf("applied %d, refused %d; want 2 and 1", applied, n.clock.Refused())
	}
	if rec := n.db.Get([]byte("future")); rec.Exists() {
		t.Fatal("a record from a clock an hour ahead was applied")
	}
	if _, err := n.ApplyRemote(context.Background(), []merkle.Record{{Key: []byte("x"), Payload: []byte{1, 2, 3}}}, 0); err == nil {
		t.Fatal("a corrupt record was accepted")
	}
}

// TestApplyRemoteLeavesCollectedTraces: a peer's copy of a set that still
// holds a removal's trace this node has collected (its horizon is past
// it) changes nothing here: taking the trace back only to collect it again
// kept quiet nodes' Merkle roots apart and their sessions repairing.
func TestApplyRemoteLeavesCollectedTraces(t *testing.T) {
	ctx := context.Background()
	n, _ := openNode(t, t.TempDir()) // alone: everything is stable
	now := time.Now().UnixMilli()
	ts := uint64(0)
	next := func() (record.Version, error) {
		ts++
		return record.Version{TS: hlc.New(now, uint16(ts)), Node: 7}, nil
	}
	v1, _ := next()
	op := record.BeginTyped(record.Record{}, false, record.KindSet, v1, next)
	op.AddMember([]byte("keep"))
	op.AddMember([]byte("gone"))
	base := op.Delta()
	v2, _ := next()
	rem := record.BeginTyped(base, true, record.KindSet, v2, next)
	rem.RemMember([]byte("gone"))
	peer := record.Merge(base, rem.Delta())
	if !peer.Typed.HasTraces() {
		t.Fatal("the peer's record holds no trace")
	}
	collected := peer.WithoutTracesUpTo(v2.TS)
	if collected.Typed.HasTraces() || !collected.Typed.HasMember([]byte("keep")) || collected.Typed.HasMember([]byte("gone")) {
		t.Fatalf("collected: %+v", collected.Typed)
	}
	apply := func(rec record.Record) int {
		t.Helper()
		applied, err := n.ApplyRemote(ctx, []merkle.Record{{Key: []byte("set"), Payload: record.Encode(rec)}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return applied
	}
	if got := apply(collected); got != 1 {
		t.Fatalf("the set, new here: %d applied, want 1", got)
	}
	if got := apply(peer); got != 0 {
		t.Fatalf("the peer's copy with a trace collected here: %d applied, want 0", got)
	}
	if rec := n.db.Table().Peek([]byte("set")); rec.Typed.HasTraces() {
		t.Fatalf("the node took a collected trace back: %+v", rec.Typed)
	}
}

// TestMerkleIndexBuiltBeforeUse: while the index is rebuilt at start-up
// (beside the mesh's start) its root reads 0, which no tree's root is, so
// that a log request carrying it is served from its cursor, and wait holds
// back what would write to the keyspace; once built, the root is the
// keyspace's and wait returns.
func TestMerkleIndexBuiltBeforeUse(t *testing.T) {
	n, c := openNode(t, t.TempDir())
	for i := range 100 {
		if err := c.Set(context.Background(), fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	m, err := newMerkleIndex()
	if err != nil {
		t.Fatal(err)
	}
	if r := m.root(); r != 0 {
		t.Fatalf("root %x before the rebuild", r)
	}
	waited := make(chan struct{})
	go func() {
		m.wait()
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("wait returned before the rebuild")
	default:
	}
	if _, err := m.rebuild(n.db.Table()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return after the rebuild")
	}
	if m.root() != n.MerkleRoot() || m.root() == 0 {
		t.Fatalf("rebuilt root %x, the node's %x", m.root(), n.MerkleRoot())
	}
}
