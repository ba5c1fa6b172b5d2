package bridge

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/bridge/whole"
	"github.com/redmesh/redmesh/node"
	"github.com/redmesh/redmesh/record"
)

func listOf(s string) [][]byte {
	if s == "" {
		return nil
	}
	var out [][]byte
	for _, v := range strings.Split(s, ",") {
		out = append(out, []byte(v))
	}
	return out
}

func nodeList(n *node.Node, key string) string {
	rec, live := n.Read([]byte(key))
	s := FromRecord(rec, live)
	if s.Kind != List {
		return "<" + s.Kind.String() + ">"
	}
	var vs []string
	for _, m := range s.Members {
		vs = append(vs, string(m))
	}
	return strings.Join(vs, ",")
}

// TestListTakeIn: a backend list edit becomes pops, pushes and LSETs of the
// node's list that leave it as the backend holds it (or, additive, the
// backend's elements pushed around what the two share).
func TestListTakeIn(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir())
	cases := []struct {
		name, node, backend string
		additive            bool
		want                string
		pops                int // elements the write removes from the node's list
	}{
		{"rpush", "a,b", "a,b,c,d", false, "a,b,c,d", 0},
		{"lpush", "a,b", "z,a,b", false, "z,a,b", 0},
		{"lpop rpush", "a,b,c", "b,c,d", false, "b,c,d", 1},
		{"ltrim", "a,b,c,d,e", "b,c", false, "b,c", 3},
		{"lset", "a,b,c", "a,x,c", false, "a,x,c", 1},
		{"linsert", "a,b,c,d", "a,b,x,c,d", false, "a,b,x,c,d", 2},
		{"nothing shared", "a,b", "x,y,z", false, "x,y,z", 2},
		{"emptied by the node", "", "x", false, "x", 0},
		{"duplicates", "a,a,b", "a,a,b,a", false, "a,a,b,a", 0},
		{"additive keeps the node's", "a,b,c", "b,c,d", true, "a,b,c,d", 0},
		{"additive nothing shared", "a", "x", true, "a,x", 0},
	}
	for i, tc := range cases {
		key := []byte("l" + itoa(i))
		err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
			if tc.node == "" {
				return nil
			}
			return l.EditList(key, node.ListEdit{Tail: listOf(tc.node)})
		})
		if err != nil {
			t.Fatal(err)
		}
		var removed int
		err = n.UpdateLocal(ctx, func(l *node.LocalTx) error {
			cur, live, _ := l.Get(key)
			e := listEdit(FromRecord(cur, live), State{Kind: List, Members: listOf(tc.backend)}, tc.additive)
			removed = e.DropHead + e.DropTail + len(e.Set)
			_, err := takeIn(l, key, State{Kind: List, Members: listOf(tc.backend)}, change{additive: tc.additive})
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := nodeList(n, string(key)); got != tc.want {
			t.Errorf("%s: node holds %s, want %s", tc.name, got, tc.want)
		}
		if removed != tc.pops {
			t.Errorf("%s: the write removes or sets %d elements, want %d", tc.name, removed, tc.pops)
		}
	}
}

// TestListTakeInRandom: whatever the two lists, the node ends holding the
// backend's.
func TestListTakeInRandom(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir())
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() [][]byte {
		out := make([][]byte, rng.IntN(8))
		for i := range out {
			out[i] = []byte{byte('a' + rng.IntN(4))}
		}
		return out
	}
	for i := range 300 {
		key := []byte("r" + itoa(i))
		from, to := random(), random()
		for _, vs := range [][][]byte{from, to} {
			err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
				if len(vs) == 0 {
					return l.Delete(key)
				}
				_, err := takeIn(l, key, State{Kind: List, Members: vs}, change{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			rec, live := n.Read(key)
			if got := FromRecord(rec, live); len(vs) > 0 && !slices.EqualFunc(got.Members, vs, slices.Equal) {
				t.Fatalf("%q then %q: node holds %q", from, to, got.Members)
			}
		}
	}
}

// TestBridgeSortedSetsAndLists: sorted sets and lists changed straight in
// the backend reach the node member by member, and the node's writes reach
// the backend, without being taken in again.
func TestBridgeSortedSetsAndLists(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	c.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2.5, Member: "b"})
	c.RPush(ctx, "q", "j1", "j2")
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	zscore := func(m string) (float64, bool) {
		rec, live := n.Read([]byte("z"))
		if !live || rec.Kind() != record.KindZSet {
			return 0, false
		}
		return rec.Typed.Score([]byte(m))
	}
	within(t, 5*time.Second, "take-in", func() bool { s, ok := zscore("b"); return ok && s == 2.5 && nodeList(n, "q") == "j1,j2" })

	// Straight to the backend.
	c.ZIncrBy(ctx, "z", 0.1, "a")
	c.ZAdd(ctx, "z", redis.Z{Score: math.Inf(1), Member: "c"})
	c.ZRem(ctx, "z", "b")
	c.LPop(ctx, "q")
	c.RPush(ctx, "q", "j3", "j4")
	c.LSet(ctx, "q", 0, "j2'")
	within(t, 5*time.Second, "backend changes in the node", func() bool {
		a, _ := zscore("a")
		inf, _ := zscore("c")
		_, hasB := zscore("b")
		return a == 1.1 && math.IsInf(inf, 1) && !hasB && nodeList(n, "q") == "j2',j3,j4"
	})
	takenIn := b.st.takenIn.Load()

	// The node's writes, as a peer's records would arrive.
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		if err := l.EditTyped([]byte("z"), node.TypedEdit{Kind: record.KindZSet, Add: [][]byte{[]byte("d")}, Scores: []float64{-3}, Rem: [][]byte{[]byte("a")}}); err != nil {
			return err
		}
		return l.EditList([]byte("q"), node.ListEdit{DropHead: 1, Tail: [][]byte{[]byte("j5")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "node writes in the backend", func() bool {
		z := c.ZRangeWithScores(ctx, "z", 0, -1).Val()
		q := c.LRange(ctx, "q", 0, -1).Val()
		return len(z) == 2 && z[0].Member == "d" && z[0].Score == -3 && z[1].Member == "c" &&
			slices.Equal(q, []string{"j3", "j4", "j5"})
	})
	// The writes' notifications come back as echoes, not as changes.
	within(t, 5*time.Second, "echoes", func() bool { return b.st.echoes.Load() > 0 })
	if got := b.st.takenIn.Load(); got != takenIn {
		t.Fatalf("the node's own writes were taken in again: %d changes, was %d", got, takenIn)
	}
	// An audit, run by the bridge's worker, finds both sides equal.
	audits := b.st.audits.Load()
	b.requestResync()
	within(t, 5*time.Second, "audit", func() bool { return b.st.audits.Load() > audits && b.takeIn.Done.Load() })
	if got := b.takeIn.Written.Load(); got != 0 {
		t.Fatalf("the audit took in %d keys of a backend in sync", got)
	}
}

// TestWholeKeys: a stream is carried whole: taken into the node as its
// DUMP payload, written back with RESTORE, each change replacing it (last
// writer wins); a payload the backend refuses is reported and left alone.
func TestWholeKeys(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	c.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "1-1", Values: []string{"f", "v1"}})
	c.PExpire(ctx, "st", time.Hour)
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	nodeState := func(key string) State {
		rec, live := n.Read([]byte(key))
		return FromRecord(rec, live)
	}
	within(t, 5*time.Second, "the stream in the node", func() bool { s := nodeState("st"); return s.Kind == Whole && s.Type == "stream" && s.At != 0 })

	// A change in the backend replaces the node's copy.
	before := nodeState("st").Digest()
	c.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "2-1", Values: []string{"f", "v2"}})
	within(t, 5*time.Second, "the change in the node", func() bool { d := nodeState("st").Digest(); return d != before && d != 0 })

	// The node's copy (a peer's, as it would arrive) is restored in the
	// backend, with its deadline.
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		st := nodeState("st")
		return l.SetString([]byte("copy"), whole.Wrap(st.Type, st.Str), st.At)
	})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "the copy in the backend", func() bool {
		xs := c.XRange(ctx, "copy", "-", "+").Val()
		return len(xs) == 2 && xs[1].ID == "2-1" && xs[1].Values["f"] == "v2" && c.PTTL(ctx, "copy").Val() > 0
	})

	// A payload the backend refuses is reported, not retried, and the
	// backend keeps what it held.
	c.Set(ctx, "bad", "kept", 0)
	within(t, 5*time.Second, "bad in the node", func() bool { v, ok := nodeString(n, "bad"); return ok && v == "kept" })
	takenIn := b.st.takenIn.Load()
	err = n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		return l.SetString([]byte("bad"), whole.Wrap("stream", []byte("not a payload")), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "the refusal", func() bool { return b.st.refused.Load() == 1 })
	if v := c.Get(ctx, "bad").Val(); v != "kept" {
		t.Fatalf("the backend's bad = %q", v)
	}
	if infoField(b, "bridge_restores_refused") != "1" {
		t.Fatal("INFO does not report the refusal")
	}

	// Nothing the bridge wrote came back as a change; an audit finds the
	// carried keys in sync.
	if got := b.st.takenIn.Load(); got != takenIn {
		t.Fatalf("the bridge's own RESTOREs were taken in again: %d changes, was %d", got, takenIn)
	}
	if err := b.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.takeIn.Written.Load(); got != 0 {
		t.Fatalf("the audit took in %d keys", got)
	}
	if got := b.st.refused.Load(); got != 1 {
		t.Fatalf("the refused key was retried: %d refusals", got)
	}
}

// TestCommonRunLargeLists: past the comparison bound, a few pops and pushes
// at both ends of a long list are still found as such.
func TestCommonRunLargeLists(t *testing.T) {
	a := make([][]byte, 5000)
	for i := range a {
		a[i] = []byte(itoa(i))
	}
	b := append(slices.Clone(a[3:]), []byte("new1"), []byte("new2")) // LPOP 3, RPUSH 2
	if len(a)*len(b) <= maxListWork {
		t.Fatal("the lists are within the bound: the test does not test the large path")
	}
	i, k, run := commonRun(a, b)
	if i != 3 || k != 0 || run != len(a)-3 {
		t.Fatalf("run a[%d:] b[%d:] of %d, want a[3:] b[0:] of %d", i, k, run, len(a)-3)
	}
	// Pushes of many elements at both ends: found by a's middle.
	var c [][]byte
	for j := range 40 {
		c = append(c, []byte("head"+itoa(j)))
	}
	c = append(c, a...)
	for j := range 40 {
		c = append(c, []byte("tail"+itoa(j)))
	}
	if i, k, run = commonRun(a, c); i != 0 || k != 40 || run != len(a) {
		t.Fatalf("run a[%d:] c[%d:] of %d, want a[0:] c[40:] of %d", i, k, run, len(a))
	}
}

// TestLargeListPopMeetsPushesAtBothEnds: an element popped in the backend
// from a long list, while other sites' pushes of many elements wait at
// both ends, is popped in the node too.
func TestLargeListPopMeetsPushesAtBothEnds(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir())
	var was, have [][]byte
	for j := range 3000 {
		was = append(was, []byte("e"+itoa(j)))
	}
	for j := range 50 {
		have = append(have, []byte("head"+itoa(j)))
	}
	have = append(have, was...)
	for j := range 50 {
		have = append(have, []byte("tail"+itoa(j)))
	}
	key := []byte("q")
	if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.EditList(key, node.ListEdit{Tail: have}) }); err != nil {
		t.Fatal(err)
	}
	from := baseOf(State{Kind: List, Members: was})
	backend := State{Kind: List, Members: was[1 : len(was)-1]} // LPOP, RPOP
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		_, err := takeIn(l, key, backend, change{from: &from})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := nodeList(n, "q")
	want := append(append(append([][]byte{}, have[:50]...), was[1:len(was)-1]...), have[len(have)-50:]...)
	if got != string(bytes.Join(want, []byte(","))) {
		t.Fatalf("the node holds %d bytes of list, not the pops' result (first: %.40s..., last: ...%.40s)", len(got), got, got[max(0, len(got)-40):])
	}
}

// TestEditListRefusesBadIndexes: an edit that does not fit the list is an
// error, not a panic.
func TestEditListRefusesBadIndexes(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir())
	key := []byte("l")
	if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.EditList(key, node.ListEdit{Tail: listOf("a,b")}) }); err != nil {
		t.Fatal(err)
	}
	for _, e := range []node.ListEdit{
		{DropHead: 3},
		{DropHead: 1, DropTail: 2},
		{DropTail: -1},
		{DropHead: 1, Set: map[int][]byte{1: []byte("x")}},
		{Set: map[int][]byte{-1: []byte("x")}},
	} {
		if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.EditList(key, e) }); err == nil {
			t.Errorf("%+v: no error", e)
		}
	}
	if got := nodeList(n, "l"); got != "a,b" {
		t.Fatalf("the list is %s", got)
	}
}

// TestListPopMeetsOwedEdit: an element popped in the backend while a
// peer's push or pop of the same list waits to be written there is popped
// in the node too, found by the run the node's list shares with the base,
// and does not come back.
func TestListPopMeetsOwedEdit(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir())
	cases := []struct{ name, base, node, backend, want string }{
		{"rpop, a peer's rpush owed", "a,b,c", "a,b,c,d", "a,b", "a,b,d"},
		{"lpop, a peer's lpush owed", "a,b,c", "z,a,b,c", "b,c", "z,b,c"},
		{"lpop, a peer's rpush owed", "a,b,c", "a,b,c,d", "b,c", "b,c,d"},
		{"rpop and rpush, a peer's rpush owed", "a,b,c", "a,b,c,d", "a,b,e", "a,b,d,e"},
		{"rpop, the peer popped it too", "a,b,c", "a,b", "a,b", "a,b"},
		{"two rpops, one the peer's too", "a,b,c", "a,b", "a", "a"},
		{"lpop and rpop, pushes at both ends owed", "a,b,c,d", "y,a,b,c,d,e", "b,c", "y,b,c,e"},
		{"emptied, a peer's rpush owed", "a,b", "a,b,c", "", "c"},
		{"duplicates", "x,x,x", "x,x,x,y", "x,x", "x,x,y"},
		{"lpop, a peer's insert in the middle owed", "a,b,c,d,e", "a,b,X,c,d,e", "b,c,d,e", "b,X,c,d,e"},
		{"rpop, a peer's removal in the middle owed", "a,b,c,d,e,f", "a,b,c,e,f", "a,b,c,d,e", "a,b,c,e"},
		{"lpop and rpop, a peer's set in the middle owed", "a,b,c,d,e,f,g", "a,b,c,X,e,f,g", "b,c,d,e,f", "b,c,X,e,f"},
	}
	for i, tc := range cases {
		key := []byte("p" + itoa(i))
		err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
			return l.EditList(key, node.ListEdit{Tail: listOf(tc.node)})
		})
		if err != nil {
			t.Fatal(err)
		}
		from := baseOf(State{Kind: List, Members: listOf(tc.base)})
		backend := State{}
		if tc.backend != "" {
			backend = State{Kind: List, Members: listOf(tc.backend)}
		}
		err = n.UpdateLocal(ctx, func(l *node.LocalTx) error {
			_, err := takeIn(l, key, backend, change{from: &from})
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := nodeList(n, string(key)); got != tc.want {
			t.Errorf("%s: node holds %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestEndsOf: windows read at a long list's ends are placed in its base,
// or not at all where they do not fit it.
func TestEndsOf(t *testing.T) {
	var was [][]byte
	for j := range 1000 {
		was = append(was, []byte("e"+itoa(j)))
	}
	from := baseOf(State{Kind: List, Members: was})
	pushed := func(prefix string, n int) [][]byte {
		var out [][]byte
		for j := range n {
			out = append(out, []byte(prefix+itoa(j)))
		}
		return out
	}
	for _, tc := range []struct {
		name             string
		head, tail       [][]byte
		popHead, popTail int
	}{
		{"lpush", pushed("h", 3), nil, 0, 0},
		{"rpush", nil, pushed("t", 5), 0, 0},
		{"lpop and rpop", nil, nil, 4, 7},
		{"a queue: lpush and rpop", pushed("h", 20), nil, 0, 20},
		{"both ends, many", pushed("h", 100), pushed("t", 90), 50, 60},
	} {
		now := slices.Concat(tc.head, was[tc.popHead:len(was)-tc.popTail], tc.tail)
		e := endsOf(&from, len(now), 0, now[:listWindow], now[len(now)-listWindow:])
		if e == nil {
			t.Errorf("%s: not placed", tc.name)
			continue
		}
		if e.PopHead != tc.popHead || e.PopTail != tc.popTail || len(e.Head) != len(tc.head) || len(e.Tail) != len(tc.tail) {
			t.Errorf("%s: pops %d %d, pushes %d %d; want %d %d, %d %d", tc.name, e.PopHead, e.PopTail, len(e.Head), len(e.Tail), tc.popHead, tc.popTail, len(tc.head), len(tc.tail))
		}
		if nb := e.base(); nb.Digest != (State{Kind: List, Members: now}).Digest() {
			t.Errorf("%s: the new base's digest is not the list's", tc.name)
		}
	}
	// An insert in the middle: the length does not add up.
	now := slices.Concat(was[:500], [][]byte{[]byte("x")}, was[500:])
	if e := endsOf(&from, len(now), 0, now[:listWindow], now[len(now)-listWindow:]); e != nil {
		t.Errorf("an insert in the middle placed as %+v", e)
	}
	// A list repeating itself: the windows fit it at more than one place.
	var rep [][]byte
	for j := range 1000 {
		rep = append(rep, []byte("r"+itoa(j%50)))
	}
	fromRep := baseOf(State{Kind: List, Members: rep})
	now = rep[:900] // RPOP 100: LPOP 100 fits as well
	if e := endsOf(&fromRep, len(now), 0, now[:listWindow], now[len(now)-listWindow:]); e != nil {
		t.Errorf("a repeating list placed as pops %d %d", e.PopHead, e.PopTail)
	}
	// More pushed at one end than a window holds.
	now = slices.Concat(pushed("h", 200), was)
	if e := endsOf(&from, len(now), 0, now[:listWindow], now[len(now)-listWindow:]); e != nil {
		t.Errorf("200 pushes placed as %+v", e)
	}
}

// TestListEndsRead: a long list the backend changed at its ends only (its
// notifications say) is read from its ends, not whole, and the node and
// the base follow it; the backend's digest is the new base's.
func TestListEndsRead(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b := newIdleBridge(t, srv, n)
	var vals []any
	for j := range 1000 {
		vals = append(vals, "e"+itoa(j))
	}
	c.RPush(ctx, "q", vals...)
	ends := notesListEnds | notes(List)<<4
	pull := func() {
		t.Helper()
		b.notes["q"] = ends
		if err := b.pullIn(ctx, []string{"q"}); err != nil {
			t.Fatal(err)
		}
	}
	b.notes["q"] = notes(List) << 4
	if err := b.pullIn(ctx, []string{"q"}); err != nil { // the first read: whole
		t.Fatal(err)
	}
	// A peer's push owed to the backend, and a queue's work in the backend.
	if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		return l.EditList([]byte("q"), node.ListEdit{Tail: listOf("peer")})
	}); err != nil {
		t.Fatal(err)
	}
	c.LPush(ctx, "q", "new1", "new2")
	c.RPop(ctx, "q")
	c.RPopCount(ctx, "q", 2) // "peer" is not in the backend: e999, e998, e997 go
	whole := commandCalls(t, c, "lrange")
	pull()
	if got := commandCalls(t, c, "lrange") - whole; got != 2 {
		t.Fatalf("%d LRANGEs, want 2 (the ends)", got)
	}
	want := slices.Concat(listOf("new2,new1"), listOf(strings.Join(func() []string {
		var s []string
		for j := range 997 {
			s = append(s, "e"+itoa(j))
		}
		return s
	}(), ",")), listOf("peer"))
	if got := nodeList(n, "q"); got != string(bytes.Join(want, []byte(","))) {
		t.Fatalf("the node holds %.60s...%s", got, got[max(0, len(got)-30):])
	}
	// The base is what the backend holds: its digest is the backend's.
	ds, err := digestScript.Run(ctx, b.rdb, []string{"q"}).StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	if sh, _ := b.shadow.Get(keyHash("q")); digestHex(sh.Digest) != ds[0] {
		t.Fatalf("the base's digest %s, the backend's %s", digestHex(sh.Digest), ds[0])
	}
	// Written back: the backend gets the peer's push.
	if err := b.pushOut(ctx, []string{"q"}); err != nil {
		t.Fatal(err)
	}
	checkBoth(t, b, n, map[string]string{"q": "list " + strings.ReplaceAll(string(bytes.Join(want, []byte(","))), ",", " ")})
	// Too much changed at once to place: read whole, rightly.
	var many []any
	for j := range 300 {
		many = append(many, "m"+itoa(j))
	}
	c.LPush(ctx, "q", many...)
	whole = commandCalls(t, c, "lrange")
	pull()
	if got := commandCalls(t, c, "lrange") - whole; got != 3 {
		t.Fatalf("%d LRANGEs, want 3 (the ends, then the whole list)", got)
	}
	if got, want := nodeList(n, "q"), strings.Join(c.LRange(ctx, "q", 0, -1).Val(), ","); got != want {
		t.Fatal("the node's list is not the backend's after a whole read")
	}
	// The node's key no longer a list (a peer's delete): read whole next.
	if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.Delete([]byte("q")) }); err != nil {
		t.Fatal(err)
	}
	c.LPush(ctx, "q", "x")
	pull()
	if _, again := b.notified["q"]; !again || b.notes["q"] != notes(List)<<4 {
		t.Fatal("a list the node does not hold is not read again whole")
	}
}

// TestQueueFollowed: a long list worked as a queue in the backend (LPUSH
// at one end, RPOP at the other) is followed by the node, by its
// notifications, read from its ends.
func TestQueueFollowed(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "take-in", func() bool { return b.takeIn.Done.Load() })
	var vals []any
	for j := range 1000 {
		vals = append(vals, "e"+itoa(j))
	}
	c.RPush(ctx, "q", vals...)
	same := func() bool { return nodeList(n, "q") == strings.Join(c.LRange(ctx, "q", 0, -1).Val(), ",") }
	within(t, 5*time.Second, "the list in the node", same)
	for j := range 50 {
		c.LPush(ctx, "q", "n"+itoa(j))
		c.RPop(ctx, "q")
	}
	within(t, 5*time.Second, "the queue's work in the node", same)
	if got := infoField(b, "bridge_lists_read_by_ends"); got == "0" {
		t.Fatal("no list read by its ends")
	}
}
