package mesh

import (
	"errors"
	"testing"

	"github.com/redmesh/redmesh/merkle"
)

func TestSnapshotWireRoundTrip(t *testing.T) {
	req := SnapshotRequest{From: 0xfedcba9876543210, MaxBytes: 1 << 20}
	d, err := Decode(AppendSnapshotRequest(nil, req))
	if err != nil || d.SnapshotRequest == nil || *d.SnapshotRequest != req {
		t.Fatalf("request: %+v %v", d.SnapshotRequest, err)
	}
	c := &SnapshotChunk{Epoch: 7, Head: 1234, Next: 1 << 63, Done: false, KeysTotal: 10, BytesTotal: 999,
		Records: []merkle.Record{{Key: []byte("a"), Payload: []byte("xyz")}, {Key: []byte("b"), Payload: []byte{}}}}
	b := AppendSnapshotChunk(nil, c)
	d, err = Decode(b)
	if err != nil || d.Chunk == nil {
		t.Fatalf("chunk: %v", err)
	}
	if got := d.Chunk; got.Epoch != 7 || got.Head != 1234 || got.Next != 1<<63 || got.Done || got.KeysTotal != 10 ||
		got.BytesTotal != 999 || len(got.Records) != 2 || string(got.Records[0].Payload) != "xyz" {
		t.Fatalf("chunk decoded as %+v", got)
	}
	// Any flipped bit is caught by the checksum (or the framing) before
	// anything is used.
	for i := 1; i < len(b); i++ {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x10
		if _, err := Decode(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	if _, err := Decode(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("cut chunk: %v", err)
	}
	if _, err := Decode([]byte{KindSnapshotChunk, 1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short chunk: %v", err)
	}
}

func TestChooseRepair(t *testing.T) {
	tb := table(Peer{ID: 1, Connected: true}, Peer{ID: 2, Connected: true})
	if a := tb.ChooseRepair(1, false); a != Reconcile || tb.Bootstrapping() {
		t.Fatalf("a node with data: %v", a)
	}
	if a := tb.ChooseRepair(1, true); a != Bootstrap || !tb.Bootstrapping() {
		t.Fatalf("an empty node: %v", a)
	}
	// Once under way (keys arrived), the bootstrap goes on with any peer.
	if a := tb.ChooseRepair(2, false); a != Bootstrap {
		t.Fatalf("a bootstrap under way: %v", a)
	}
	if a := tb.ChooseRepair(9, true); a != Idle {
		t.Fatalf("unknown peer: %v", a)
	}
}

func chunk(epoch, head, next uint64, done bool, n int) *SnapshotChunk {
	c := &SnapshotChunk{Epoch: epoch, Head: head, Next: next, Done: done, KeysTotal: 100, BytesTotal: 1000}
	for range n {
		c.Records = append(c.Records, merkle.Record{Key: []byte("k"), Payload: make([]byte, 9)})
	}
	return c
}

func TestSnapshotProgress(t *testing.T) {
	tb := table(Peer{ID: 1, Connected: true}, Peer{ID: 2, Connected: true})
	tb.ChooseRepair(1, true)
	if r := tb.SnapshotRequestFor(1, 64); r != (SnapshotRequest{From: 0, MaxBytes: 64}) {
		t.Fatalf("first request %+v", r)
	}
	for i, c := range []*SnapshotChunk{chunk(3, 50, 100, false, 5), chunk(3, 50, 200, false, 5)} {
		if done, err := tb.SnapshotChunk(1, i == 0, c); done || err != nil {
			t.Fatalf("chunk %d: %v %v", i, done, err)
		}
	}
	b, active := tb.BootstrapProgress()
	want := BootstrapState{Peer: 1, Start: Cursor{3, 50}, Begun: true, Next: 200, Keys: 10, Bytes: 100, KeysTotal: 100, BytesTotal: 1000}
	if !active || b != want {
		t.Fatalf("progress %+v, want %+v", b, want)
	}
	// Interrupted: saved and restored, it resumes at Next.
	saved, err := DecodeBootstrap(AppendBootstrap(nil, b))
	if err != nil || saved != b {
		t.Fatalf("saved %+v %v", saved, err)
	}
	tb = table(Peer{ID: 1, Connected: true}, Peer{ID: 2, Connected: true})
	tb.RestoreBootstrap(saved)
	if a := tb.ChooseRepair(1, false); a != Bootstrap {
		t.Fatalf("restored: %v", a)
	}
	if r := tb.SnapshotRequestFor(1, 64); r.From != 200 {
		t.Fatalf("resumed request %+v", r)
	}
	// Same peer, same log: Start stays the first stream's, the older one.
	if done, err := tb.SnapshotChunk(1, true, chunk(3, 70, 300, false, 1)); done || err != nil {
		t.Fatal(done, err)
	}
	if b, _ := tb.BootstrapProgress(); b.Start != (Cursor{3, 50}) || b.Keys != 11 {
		t.Fatalf("after resuming: %+v", b)
	}
	// Going back is a protocol error.
	if _, err := tb.SnapshotChunk(1, false, chunk(3, 70, 250, false, 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("backwards: %v", err)
	}
	// Another peer takes over: peer 1's part becomes a cursor into its log.
	if done, err := tb.SnapshotChunk(2, true, chunk(8, 900, 400, false, 1)); done || err != nil {
		t.Fatal(done, err)
	}
	if p := tb.Get(1); !p.HasCursor || p.Cursor != (Cursor{3, 50}) {
		t.Fatalf("peer 1's cursor %+v", p)
	}
	done, err := tb.SnapshotChunk(2, false, chunk(8, 900, 0, true, 2))
	if !done || err != nil {
		t.Fatal(done, err)
	}
	if p := tb.Get(2); !p.HasCursor || p.Cursor != (Cursor{8, 900}) || tb.Bootstrapping() {
		t.Fatalf("after the snapshot: cursor %+v, bootstrapping %v", p, tb.Bootstrapping())
	}
	if _, err := tb.SnapshotChunk(2, false, chunk(8, 900, 0, true, 2)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a chunk after the end: %v", err)
	}
	b, active = tb.BootstrapProgress()
	if active || b.Keys != 14 {
		t.Fatalf("final progress %+v %v", b, active)
	}
}

func TestDecodeBootstrapRejects(t *testing.T) {
	good := AppendBootstrap(nil, BootstrapState{Peer: 1, Next: 5, Begun: true})
	for i, b := range [][]byte{nil, {2}, good[:len(good)-1], append(append([]byte(nil), good...), 0), {1, 0x80}} {
		if _, err := DecodeBootstrap(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("case %d: %v", i, err)
		}
	}
	if _, err := DecodeBootstrap(good); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeBootstrap(f *testing.F) {
	f.Add(AppendBootstrap(nil, BootstrapState{Peer: 3, Start: Cursor{1, 2}, Next: 1 << 40, Keys: 5, Begun: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeBootstrap(b)
		if err != nil {
			return
		}
		if again, err := DecodeBootstrap(AppendBootstrap(nil, got)); err != nil || again != got {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}

func TestWantBootstrapWithdrawnWhenTheLogServes(t *testing.T) {
	tb := table(Peer{ID: 1, Connected: true})
	tb.WantBootstrap()
	if !tb.Bootstrapping() {
		t.Fatal("not wanted")
	}
	// Equal roots: the peer answers with its head, no entries.
	if act, _ := tb.CatchUpReply(1, &LogReply{Epoch: 2, Head: 10, Next: 10}, 10, 5); act != Idle || tb.Bootstrapping() {
		t.Fatalf("after an equal-roots reply: %v, bootstrapping %v", act, tb.Bootstrapping())
	}
	// A snapshot under way is not withdrawn by another peer's log.
	tb = table(Peer{ID: 1, Connected: true}, Peer{ID: 2, Connected: true})
	tb.WantBootstrap()
	tb.ChooseRepair(1, true)
	tb.SnapshotChunk(1, true, chunk(3, 50, 100, false, 1))
	tb.CatchUpReply(2, &LogReply{Epoch: 4, Head: 10, Next: 10}, 10, 5)
	if !tb.Bootstrapping() {
		t.Fatal("a begun snapshot was withdrawn")
	}
}

func TestChooseSyncPeerSkipsPeersBeingServed(t *testing.T) {
	tb := table(Peer{ID: 1, Connected: true, Serving: true}, Peer{ID: 2, Connected: true})
	for i := range 4 {
		if id, ok := tb.ChooseSyncPeer(0, seq(i)); !ok || id != 2 {
			t.Fatalf("draw %d: %v %v", i, id, ok)
		}
	}
	tb.Get(2).Serving = true
	if _, ok := tb.ChooseSyncPeer(0, seq(0)); ok {
		t.Fatal("chose a peer being served")
	}
}
