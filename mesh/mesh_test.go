package mesh

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/redmesh/redmesh/merkle"
)

// seq returns an intn that yields the given numbers in turn (each taken
// modulo n), so tests can pick exactly which candidate a random draw lands on.
func seq(vals ...int) func(int) int {
	i := 0
	return func(n int) int {
		v := vals[i%len(vals)] % n
		i++
		return v
	}
}

func table(peers ...Peer) *Table {
	t := &Table{}
	for _, p := range peers {
		q := t.Add(p.ID)
		*q = p
	}
	return t
}

func TestChooseSyncPeer(t *testing.T) {
	const our = 42
	tests := []struct {
		name  string
		peers []Peer
		draws []int
		want  PeerID
		ok    bool
	}{
		{"no peers", nil, []int{0}, 0, false},
		{"none connected", []Peer{{ID: 1}, {ID: 2}}, []int{0}, 0, false},
		{"one connected", []Peer{{ID: 1}, {ID: 2, Connected: true}}, []int{0}, 2, true},
		{"prefers a different root", []Peer{
			{ID: 1, Connected: true, RootKnown: true, Root: our},
			{ID: 2, Connected: true, RootKnown: true, Root: 7},
			{ID: 3, Connected: true, RootKnown: true, Root: our},
		}, []int{0}, 2, true},
		{"unknown root counts as different", []Peer{
			{ID: 1, Connected: true, RootKnown: true, Root: our},
			{ID: 2, Connected: true},
			{ID: 3, Connected: true, RootKnown: true, Root: 9},
		}, []int{1}, 3, true},
		{"all equal: any connected", []Peer{
			{ID: 1, Connected: true, RootKnown: true, Root: our},
			{ID: 2, RootKnown: true, Root: 5}, // differs, but not connected
			{ID: 3, Connected: true, RootKnown: true, Root: our},
		}, []int{1}, 3, true},
		{"skips disconnected among different", []Peer{
			{ID: 1, Root: 1, RootKnown: true},
			{ID: 2, Connected: true, Root: 2, RootKnown: true},
			{ID: 3, Connected: true, Root: 3, RootKnown: true},
		}, []int{0}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := table(tt.peers...).ChooseSyncPeer(our, seq(tt.draws...))
			if got != tt.want || ok != tt.ok {
				t.Fatalf("got %v %v, want %v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestChooseSyncPeerUniform(t *testing.T) {
	tb := table(Peer{ID: 1, Connected: true}, Peer{ID: 2, Connected: true}, Peer{ID: 3, Connected: true})
	seen := map[PeerID]int{}
	for i := range 3 {
		id, _ := tb.ChooseSyncPeer(0, seq(i))
		seen[id]++
	}
	if len(seen) != 3 {
		t.Fatalf("draws 0..2 should reach every peer once: %v", seen)
	}
}

func TestTableOrderAndRemove(t *testing.T) {
	var tb Table
	for _, id := range []PeerID{5, 1, 3, 1} {
		tb.Add(id)
	}
	var ids []PeerID
	for _, p := range tb.Peers() {
		ids = append(ids, p.ID)
	}
	if !reflect.DeepEqual(ids, []PeerID{1, 3, 5}) {
		t.Fatalf("ids %v", ids)
	}
	tb.Remove(3)
	tb.Remove(4)
	if tb.Len() != 2 || tb.Get(3) != nil || tb.Get(5) == nil {
		t.Fatalf("after remove: %+v", tb.Peers())
	}
}

func TestCatchUp(t *testing.T) {
	type step struct {
		reply *LogReply // nil: start
		act   Action
		req   LogRequest
	}
	tests := []struct {
		name   string
		cursor *Cursor
		steps  []step
		final  Cursor
		has    bool
	}{
		{
			name: "no cursor: ask, get truncated, reconcile, adopt head",
			steps: []step{
				{nil, ReadLog, LogRequest{Max: 10, Root: 42}},
				{&LogReply{Epoch: 3, Head: 500, Truncated: true}, Reconcile, LogRequest{}},
			},
			final: Cursor{Epoch: 3, Next: 500}, has: true,
		},
		{
			name:   "read in two batches",
			cursor: &Cursor{Epoch: 1, Next: 100},
			steps: []step{
				{nil, ReadLog, LogRequest{Epoch: 1, From: 100, Max: 10, Root: 42}},
				{&LogReply{Epoch: 1, Head: 115, Next: 110}, ReadLog, LogRequest{Epoch: 1, From: 110, Max: 10, Root: 42}},
				{&LogReply{Epoch: 1, Head: 115, Next: 115}, Idle, LogRequest{}},
			},
			final: Cursor{Epoch: 1, Next: 115}, has: true,
		},
		{
			name:   "truncated by retention: Merkle, never a copy",
			cursor: &Cursor{Epoch: 1, Next: 5},
			steps: []step{
				{nil, ReadLog, LogRequest{Epoch: 1, From: 5, Max: 10, Root: 42}},
				{&LogReply{Epoch: 1, Head: 9000, Truncated: true}, Reconcile, LogRequest{}},
			},
			final: Cursor{Epoch: 1, Next: 9000}, has: true,
		},
		{
			// The peer's root equals ours: it answers with its head and
			// no entries, and the cursor moves there without a session.
			name: "no cursor, equal roots: adopt head",
			steps: []step{
				{nil, ReadLog, LogRequest{Max: 10, Root: 42}},
				{&LogReply{Epoch: 3, Head: 500, Next: 500}, Idle, LogRequest{}},
			},
			final: Cursor{Epoch: 3, Next: 500}, has: true,
		},
		{
			name:   "already caught up",
			cursor: &Cursor{Epoch: 2, Next: 7},
			steps: []step{
				{nil, ReadLog, LogRequest{Epoch: 2, From: 7, Max: 10, Root: 42}},
				{&LogReply{Epoch: 2, Head: 7, Next: 7}, Idle, LogRequest{}},
			},
			final: Cursor{Epoch: 2, Next: 7}, has: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := table(Peer{ID: 9, Connected: true})
			if tt.cursor != nil {
				tb.SetCursor(9, *tt.cursor)
			}
			for i, st := range tt.steps {
				var act Action
				var req LogRequest
				if st.reply == nil {
					act, req = ReadLog, tb.StartCatchUp(9, 10, 42)
				} else {
					act, req = tb.CatchUpReply(9, st.reply, 10, 42)
				}
				if act != st.act || req != st.req {
					t.Fatalf("step %d: got %v %+v, want %v %+v", i, act, req, st.act, st.req)
				}
				if act == Reconcile {
					tb.ReconcileDone(9, true)
				}
			}
			p := tb.Get(9)
			if p.Cursor != tt.final || p.HasCursor != tt.has {
				t.Fatalf("cursor %+v %v, want %+v %v", p.Cursor, p.HasCursor, tt.final, tt.has)
			}
		})
	}
}

func TestNextLogRequest(t *testing.T) {
	tests := []struct {
		reply *LogReply
		req   LogRequest
		ok    bool
	}{
		{&LogReply{Epoch: 1, Head: 115, Next: 110}, LogRequest{Epoch: 1, From: 110, Max: 10, Root: 5}, true},
		{&LogReply{Epoch: 1, Head: 115, Next: 115}, LogRequest{}, false},
		{&LogReply{Epoch: 1, Head: 115, Truncated: true}, LogRequest{}, false},
	}
	for i, tt := range tests {
		req, ok := NextLogRequest(tt.reply, 10, 5)
		if req != tt.req || ok != tt.ok {
			t.Errorf("case %d: got %+v %v", i, req, ok)
		}
		// CatchUpReply asks for the same, with the root after merging.
		tb := table(Peer{ID: 1, Connected: true})
		act, again := tb.CatchUpReply(1, tt.reply, 10, 5)
		if (act == ReadLog) != ok || again != req {
			t.Errorf("case %d: CatchUpReply %v %+v", i, act, again)
		}
	}
}

func TestReconcileFailedKeepsCursor(t *testing.T) {
	tb := table(Peer{ID: 1, Connected: true})
	tb.SetCursor(1, Cursor{Epoch: 1, Next: 3})
	if act, _ := tb.CatchUpReply(1, &LogReply{Epoch: 2, Head: 50, Truncated: true}, 0, 0); act != Reconcile {
		t.Fatal(act)
	}
	tb.ReconcileDone(1, false)
	if c := tb.Get(1).Cursor; c != (Cursor{Epoch: 1, Next: 3}) {
		t.Fatalf("cursor moved on a failed session: %+v", c)
	}
	// A disconnection forgets a pending fallback.
	tb.CatchUpReply(1, &LogReply{Epoch: 2, Head: 50, Truncated: true}, 0, 0)
	tb.SetConnected(1, false)
	tb.ReconcileDone(1, true)
	if c := tb.Get(1).Cursor; c != (Cursor{Epoch: 1, Next: 3}) {
		t.Fatalf("cursor taken from a forgotten fallback: %+v", c)
	}
}

// A fallback session that completes moves the cursor to the head of the
// truncated reply, but never back: a push from the peer, or a session that
// found equal roots, may have moved it further while it ran (the simulator's
// churn seed 5: a joiner's only local write was then never acknowledged, and
// the stable time stayed at zero on it).
func TestReconcileDoneNeverGoesBack(t *testing.T) {
	tb := table(Peer{ID: 1, Connected: true})
	if act, _ := tb.CatchUpReply(1, &LogReply{Epoch: 2, Head: 0, Truncated: true}, 0, 0); act != Reconcile {
		t.Fatal(act)
	}
	tb.AdvanceCursor(1, Cursor{Epoch: 2, Next: 59})
	tb.ReconcileDone(1, true)
	if c := tb.Get(1).Cursor; c != (Cursor{Epoch: 2, Next: 59}) {
		t.Fatalf("cursor went back: %+v", c)
	}
	// Behind in the same epoch, or in another one: the pending head wins.
	for _, from := range []Cursor{{Epoch: 2, Next: 3}, {Epoch: 1, Next: 90}} {
		tb.SetCursor(1, from)
		tb.CatchUpReply(1, &LogReply{Epoch: 2, Head: 50, Truncated: true}, 0, 0)
		tb.ReconcileDone(1, true)
		if c := tb.Get(1).Cursor; c != (Cursor{Epoch: 2, Next: 50}) {
			t.Fatalf("from %+v: cursor %+v", from, c)
		}
	}
}

func TestCursorsRoundTrip(t *testing.T) {
	tb := table(Peer{ID: 1}, Peer{ID: 2}, Peer{ID: 3})
	tb.SetCursor(1, Cursor{1, 10})
	tb.SetCursor(3, Cursor{2, 30})
	saved := tb.Cursors()
	tb.SetCursor(2, Cursor{1, 99})
	tb.SetCursor(3, Cursor{2, 99})
	tb.RestoreCursors(saved)
	if !reflect.DeepEqual(tb.Cursors(), saved) {
		t.Fatalf("%+v != %+v", tb.Cursors(), saved)
	}
}

func TestServeLog(t *testing.T) {
	const root = 77 // the server's
	tests := []struct {
		req         LogRequest
		epoch, f, h uint64
		max         uint32
		from, to    uint64
		truncated   bool
	}{
		{LogRequest{Epoch: 1, From: 10}, 1, 5, 20, 100, 10, 20, false},
		{LogRequest{Epoch: 1, From: 10}, 1, 5, 20, 4, 10, 14, false},
		{LogRequest{Epoch: 1, From: 10, Max: 2}, 1, 5, 20, 4, 10, 12, false},
		{LogRequest{Epoch: 1, From: 20}, 1, 5, 20, 4, 20, 20, false}, // caught up
		{LogRequest{Epoch: 1, From: 4}, 1, 5, 20, 4, 0, 0, true},     // before the oldest
		{LogRequest{Epoch: 1, From: 21}, 1, 5, 20, 4, 0, 0, true},    // beyond the head
		{LogRequest{Epoch: 2, From: 10}, 1, 5, 20, 4, 0, 0, true},    // another log
		{LogRequest{Epoch: 0, From: 0}, 1, 0, 20, 4, 0, 0, true},     // no cursor
		// Equal roots: nothing to send, whatever the cursor; the reader
		// moves to the head.
		{LogRequest{Epoch: 1, From: 10, Root: root}, 1, 5, 20, 4, 20, 20, false},
		{LogRequest{Epoch: 1, From: 4, Root: root}, 1, 5, 20, 4, 20, 20, false},
		{LogRequest{Epoch: 2, From: 10, Root: root}, 1, 5, 20, 4, 20, 20, false},
		{LogRequest{Root: root}, 1, 0, 20, 4, 20, 20, false},
	}
	for i, tt := range tests {
		from, to, tr := ServeLog(tt.req, tt.epoch, tt.f, tt.h, tt.max, root)
		if from != tt.from || to != tt.to || tr != tt.truncated {
			t.Errorf("case %d: got [%d,%d) %v", i, from, to, tr)
		}
	}
	// A reader whose tree is still being built at its start-up sends root
	// 0: it is served from its cursor, by a server whose tree is being
	// built too.
	if from, to, tr := ServeLog(LogRequest{Epoch: 1, From: 10}, 1, 5, 20, 100, 0); from != 10 || to != 20 || tr {
		t.Errorf("no root, the server's tree being built: got [%d,%d) %v", from, to, tr)
	}
}

func TestBatcher(t *testing.T) {
	tests := []struct {
		max   int
		adds  int
		sent  []int // sizes of batches Add returned
		flush int
	}{
		{3, 7, []int{3, 3}, 1},
		{3, 3, []int{3}, 0},
		{0, DefaultBatch + 1, []int{DefaultBatch}, 1},
		{5, 1, nil, 1}, // a lone write leaves at once on Flush
	}
	for _, tt := range tests {
		b := Batcher[int]{Max: tt.max}
		var sent []int
		for i := range tt.adds {
			if out := b.Add(i); out != nil {
				sent = append(sent, len(out))
			}
		}
		if !reflect.DeepEqual(sent, tt.sent) || len(b.Flush()) != tt.flush || b.Flush() != nil {
			t.Errorf("%+v: sent %v", tt, sent)
		}
	}
}

func TestWireRoundTrip(t *testing.T) {
	recs := []merkle.Record{{Key: []byte("a"), Payload: []byte{1, 2, 3}}, {Key: []byte("bb"), Payload: nil}}
	msgs := [][]byte{
		AppendLogRequest(nil, LogRequest{Epoch: 7, From: 1 << 40, Max: 1024, Root: 0xfedcba9876543210}),
		AppendLogReply(nil, &LogReply{Epoch: 7, Head: 90, Next: 80, Records: recs}),
		AppendLogReply(nil, &LogReply{Epoch: 7, Head: 90, Truncated: true}),
		AppendPush(nil, recs),
		AppendPush(nil, nil),
		AppendRootAt(nil, RootAt{Epoch: 9, Head: 1 << 50, Root: 0x0123456789abcdef, Own: 1<<50 - 3}),
	}
	for i, b := range msgs {
		d, err := Decode(b)
		if err != nil {
			t.Fatalf("msg %d: %v", i, err)
		}
		var again []byte
		switch {
		case d.Request != nil:
			again = AppendLogRequest(nil, *d.Request)
		case d.Reply != nil:
			again = AppendLogReply(nil, d.Reply)
		case d.RootAt != nil:
			again = AppendRootAt(nil, *d.RootAt)
		case d.SnapshotRequest != nil:
			again = AppendSnapshotRequest(nil, *d.SnapshotRequest)
		case d.Chunk != nil:
			again = AppendSnapshotChunk(nil, d.Chunk)
		default:
			again = AppendPush(nil, d.Push)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("msg %d: %x != %x", i, again, b)
		}
	}
	if PayloadBytes(recs) != 3 {
		t.Fatal("payload bytes")
	}
}

func TestDecodeRejects(t *testing.T) {
	for i, b := range [][]byte{
		nil, {9}, {KindLogRequest}, {KindLogRequest, 1, 2, 3, 4},
		{KindPush, 0xff, 0xff, 0xff, 0xff, 0x0f}, // huge count
		{KindPush, 1, 5, 'a'},                    // key longer than the rest
		{KindLogReply, 1, 5, 6, 0, 0},            // next beyond head
		{KindLogReply, 1, 5, 0, 1, 1, 0, 0},      // records in a truncated reply
		{KindLogReply, 1, 5, 5, 2, 0},            // unknown flag
	} {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("case %d (%x): %v", i, b, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendLogRequest(nil, LogRequest{Epoch: 1, From: 2, Max: 3, Root: 4}))
	f.Add(AppendLogReply(nil, &LogReply{Epoch: 1, Head: 2, Next: 2, Records: []merkle.Record{{Key: []byte("k"), Payload: []byte("v")}}}))
	f.Add(AppendPush(nil, []merkle.Record{{Key: []byte("k"), Payload: []byte("v")}}))
	f.Add(AppendRootAt(nil, RootAt{Epoch: 1, Head: 2, Root: 3, Own: 1}))
	f.Add(AppendSnapshotRequest(nil, SnapshotRequest{From: 1 << 60, MaxBytes: 1 << 20}))
	f.Add(AppendSnapshotChunk(nil, &SnapshotChunk{Epoch: 1, Head: 9, Next: 1 << 62, KeysTotal: 3, BytesTotal: 40,
		Records: []merkle.Record{{Key: []byte("k"), Payload: []byte("v")}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			return
		}
		var again []byte
		switch {
		case d.Request != nil:
			again = AppendLogRequest(nil, *d.Request)
		case d.Reply != nil:
			again = AppendLogReply(nil, d.Reply)
		case d.RootAt != nil:
			again = AppendRootAt(nil, *d.RootAt)
		case d.SnapshotRequest != nil:
			again = AppendSnapshotRequest(nil, *d.SnapshotRequest)
		case d.Chunk != nil:
			again = AppendSnapshotChunk(nil, d.Chunk)
		default:
			again = AppendPush(nil, d.Push)
		}
		if _, err := Decode(again); err != nil {
			panic(fmt.Sprintf("re-encoding does not decode: %v", err))
		}
	})
}

func TestObserveRootAt(t *testing.T) {
	tb := table(Peer{ID: 1}, Peer{ID: 2})
	steps := []struct {
		r     RootAt
		ours  uint64
		moved bool
		want  Cursor
		has   bool
	}{
		{RootAt{Epoch: 1, Head: 50, Root: 7}, 8, false, Cursor{}, false},     // roots differ: nothing known
		{RootAt{Epoch: 1, Head: 50, Root: 7}, 7, true, Cursor{1, 50}, true},  // equal: to the head
		{RootAt{Epoch: 1, Head: 40, Root: 7}, 7, false, Cursor{1, 50}, true}, // never back
		{RootAt{Epoch: 1, Head: 90, Root: 9}, 7, false, Cursor{1, 50}, true}, // differ: stays
		{RootAt{Epoch: 2, Head: 5, Root: 9}, 9, true, Cursor{2, 5}, true},    // a new epoch
		{RootAt{Epoch: 2, Head: 0, Root: 9}, 9, false, Cursor{2, 5}, true},   // no head: ignored
	}
	for i, st := range steps {
		if moved := tb.ObserveRootAt(1, st.r, st.ours); moved != st.moved {
			t.Fatalf("step %d: moved %v", i, moved)
		}
		p := tb.Get(1)
		if p.Cursor != st.want || p.HasCursor != st.has || !p.RootKnown || p.Root != st.r.Root {
			t.Fatalf("step %d: %+v", i, p)
		}
	}
	if tb.Get(2).HasCursor || tb.Get(2).RootKnown {
		t.Fatal("another peer changed")
	}
}

func TestAdvanceCursor(t *testing.T) {
	tb := table(Peer{ID: 1})
	for _, tt := range []struct {
		to, want Cursor
	}{
		{Cursor{1, 10}, Cursor{1, 10}}, // no cursor yet
		{Cursor{1, 20}, Cursor{1, 20}}, // further on
		{Cursor{1, 15}, Cursor{1, 20}}, // never back
		{Cursor{2, 5}, Cursor{2, 5}},   // a new epoch
	} {
		moved := tb.AdvanceCursor(1, tt.to)
		if p := tb.Get(1); !p.HasCursor || p.Cursor != tt.want {
			t.Fatalf("after advancing to %+v: %+v", tt.to, p.Cursor)
		}
		if moved != (tt.to == tt.want) {
			t.Fatalf("advancing to %+v reported moved=%v", tt.to, moved)
		}
	}
	if tb.AdvanceCursor(7, Cursor{1, 1}) { // an unknown peer: nothing to do
		t.Fatal("moved the cursor of an unknown peer")
	}
}
