package record

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/redmesh/redmesh/hlc"
)

// view is what a client sees of a record: its type and contents.
func view(r Record) string {
	if !r.Exists() {
		return "none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v:", r.Kind())
	switch r.Kind() {
	case KindHash:
		r.Typed.EachField(func(name, value []byte) bool {
			fmt.Fprintf(&b, " %s=%s", name, value)
			return true
		})
	case KindSet:
		r.Typed.EachMember(func(name []byte) bool {
			fmt.Fprintf(&b, " %s", name)
			return true
		})
	default:
		fmt.Fprintf(&b, " %s", r.StringData())
	}
	return b.String()
}

// collectNode is one member in the model: the deltas it applied, its record,
// and the stable timestamp it last learned.
type collectNode struct {
	id     NodeID
	has    map[int]bool
	rec    Record
	stable hlc.Timestamp
}

// TestCollectionLosesNothingAndBringsNothingBack models members that write
// one key concurrently (hash fields, set members, counters, deletes, SETs
// over them), deliver each other's deltas late, out of order and more than
// once, and collect with the stable timestamp (what every member has
// applied), filtering what arrives with Fresh. At every step each member
// shows what a member that never collected shows after the same deltas, and
// in the end all hold equal records.
func TestCollectionLosesNothingAndBringsNothingBack(t *testing.T) {
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 99))
		nodes := make([]*collectNode, 3)
		for i := range nodes {
			nodes[i] = &collectNode{id: NodeID(i + 1), has: map[int]bool{}}
		}
		var deltas []Record
		var stamps []hlc.Timestamp
		ts := uint64(10)
		names := []string{"a", "b", "c"}
		reference := func(n *collectNode) Record {
			var m Record
			for i, d := range deltas {
				if n.has[i] {
					m = Merge(m, d)
				}
			}
			return m
		}
		deliver := func(n *collectNode, i int) {
			in, _ := Fresh(n.rec, deltas[i], n.stable)
			n.rec = Merge(n.rec, in)
			n.has[i] = true
		}
		for step := range 120 {
			n := nodes[r.IntN(len(nodes))]
			switch r.IntN(4) {
			case 0, 1: // a write at n, over what n holds
				ts += uint64(1 + r.IntN(3))
				d := writeOp(r, n.rec, v(ts, n.id), names)
				deltas = append(deltas, d)
				stamps = append(stamps, hlc.Timestamp(ts))
				deliver(n, len(deltas)-1)
			case 2: // a delta arrives, maybe again
				if len(deltas) > 0 {
					deliver(n, r.IntN(len(deltas)))
				}
			case 3: // n learns the stable timestamp and collects
				n.stable = stableOf(nodes, stamps, ts)
				out, gone, _ := n.rec.Collect(n.stable, 0)
				if gone {
					out = Record{}
				}
				n.rec = out
			}
			for _, m := range nodes {
				ref := reference(m)
				if resetAhead(ref) {
					// A reset arrived before the increments it resets: the
					// counter reads negative for a while, and a type
					// register collected with an old tombstone can decide
					// whether that shows. Only the end state is compared.
					continue
				}
				if got, want := view(m.rec), view(ref); got != want {
					t.Fatalf("seed %d step %d: node %v shows %q, without collection %q", seed, step, m.id, got, want)
				}
			}
		}
		// Everything reaches everyone, then a Merkle repair moves whole
		// records (through Fresh, as the node admits them); collect with the
		// final stable time.
		for _, n := range nodes {
			for i := range deltas {
				deliver(n, i)
			}
		}
		final := stableOf(nodes, stamps, ts)
		for _, n := range nodes {
			for _, m := range nodes {
				in, _ := Fresh(n.rec, m.rec, final)
				n.rec = Merge(n.rec, in)
			}
		}
		var want Record
		for i, n := range nodes {
			n.stable = final
			out, gone, _ := n.rec.Collect(final, 0)
			if gone {
				out = Record{}
			}
			if i == 0 {
				want = out
			} else if !Equal(out, want) {
				t.Fatalf("seed %d: node %v ends with %+v, node 1 with %+v", seed, n.id, out, want)
			}
		}
	}
}

// resetAhead reports whether r holds a count reset past its increments.
func resetAhead(r Record) bool {
	if r.Typed == nil {
		return false
	}
	return slices.ContainsFunc(r.Typed.Counts, func(c Count) bool { return c.Total < c.ResetTotal })
}

// stableOf is the stable timestamp: every member has applied every delta up
// to it, and no member's clock (now, in the model) is behind it.
func stableOf(nodes []*collectNode, stamps []hlc.Timestamp, now uint64) hlc.Timestamp {
	s := hlc.Timestamp(now)
	for _, n := range nodes {
		for i, ts := range stamps {
			if !n.has[i] && ts <= s {
				s = ts - 1
			}
		}
	}
	return s
}

// writeOp is a random command's delta at version d over cur, built as the
// node builds it.
func writeOp(r *rand.Rand, cur Record, d Version, names []string) Record {
	next := versions(d.Node, uint64(d.TS)*1000)
	name := []byte(names[r.IntN(len(names))])
	live := func(k Kind) bool { return cur.Exists() && cur.Kind() == k }
	switch r.IntN(7) {
	case 0:
		op := BeginTyped(cur, live(KindHash), KindHash, d, next)
		op.SetField(name, fmt.Appendf(nil, "%v", d))
		return op.Delta()
	case 1:
		op := BeginTyped(cur, live(KindHash), KindHash, d, next)
		op.DelField(name)
		return op.Delta()
	case 2:
		op := BeginTyped(cur, live(KindSet), KindSet, d, next)
		op.AddMember(name)
		return op.Delta()
	case 3:
		op := BeginTyped(cur, live(KindSet), KindSet, d, next)
		op.RemMember(name)
		return op.Delta()
	case 4:
		op := BeginTyped(cur, live(KindString), KindString, d, next)
		if !op.Live {
			op.Rec.Value = Value{Version: d, Data: []byte("0")}
		}
		op.IncrCounter(nil, int64(1+r.IntN(5)))
		return op.Delta()
	case 5:
		return OverValue(cur, Record{Value: Value{Version: d, Tombstone: true}, Expiry: Expiry{Version: d}})
	default:
		return OverValue(cur, Record{Value: Value{Version: d, Data: []byte("s")}, Expiry: Expiry{Version: d}})
	}
}

// A trace is collected only once its removal, not merely its element, is
// stable; a count only once fully reset and stable; and a key whose delete
// every member has is gone.
func TestCollectTable(t *testing.T) {
	op := BeginTyped(Record{}, false, KindSet, v(10, 1), versions(1, 10))
	op.AddMember([]byte("m"))
	op.AddMember([]byte("k"))
	added := op.Delta()
	rem := BeginTyped(added, true, KindSet, v(20, 2), versions(2, 20))
	rem.RemMember([]byte("m"))
	removed := Merge(added, rem.Delta())
	if _, gone, changed := removed.Collect(15, 0); gone || changed {
		t.Fatalf("a trace collected at 15, its removal at 20: gone %v changed %v", gone, changed)
	}
	out, gone, changed := removed.Collect(20, 0)
	if gone || !changed || out.Typed.size() != 1 || !out.Typed.HasMember([]byte("k")) {
		t.Fatalf("at 20: gone %v changed %v, %d elements and traces left", gone, changed, out.Typed.size())
	}
	del := Merge(removed, OverValue(removed, Record{Value: Value{Version: v(30, 1), Tombstone: true}}))
	if _, gone, _ := del.Collect(29, 0); gone {
		t.Fatal("a delete at 30 is gone at 29")
	}
	if _, gone, _ := del.Collect(30, 0); !gone {
		t.Fatal("a delete at 30 is not gone at 30")
	}
	// An expired string is gone once every clock passed its deadline.
	exp := Record{Value: Value{Version: v(5, 1), Data: []byte("x")}, Expiry: Expiry{Version: v(5, 1), At: 100}}
	if _, gone, _ := exp.Collect(hlc.New(99, 0), 200); gone {
		t.Fatal("gone before every member's clock passed the deadline")
	}
	if _, gone, _ := exp.Collect(hlc.New(100, 0), 200); !gone {
		t.Fatal("an expired key past the stable deadline is not gone")
	}
	// A count fully reset goes; a new run of the same node's count then
	// replaces the old wherever it is still held.
	c := BeginTyped(Record{}, false, KindString, v(40, 1), versions(1, 40))
	c.Rec.Value = Value{Version: v(40, 1), Data: []byte("0")}
	c.IncrCounter(nil, 7)
	counter := c.Delta()
	d := Merge(counter, OverValue(counter, Record{Value: Value{Version: v(41, 2), Tombstone: true}}))
	if _, gone, _ := d.Collect(41, 0); !gone {
		t.Fatal("a deleted counter is not gone")
	}
	again := BeginTyped(Record{}, false, KindString, v(50, 1), versions(1, 50))
	again.Rec.Value = Value{Version: v(50, 1), Data: []byte("0")}
	again.IncrCounter(nil, 2)
	if got := string(Merge(d, again.Delta()).StringData()); got != "2" {
		t.Fatalf("a new run of counts over a copy of the collected one reads %q", got)
	}
}

// Fresh takes out of a peer's record only what the local record lacks and
// every member has applied, and says when that would have changed it.
func TestFresh(t *testing.T) {
	old := set(v(5, 2), "old")
	if out, aside := Fresh(Record{}, old, 10); !aside || !out.Value.Version.IsZero() {
		t.Fatalf("an old value over nothing: %+v, set aside %v", out, aside)
	}
	if out, aside := Fresh(old, old, 10); aside || !Equal(out, old) {
		t.Fatalf("a copy of what is held: %+v, set aside %v", out, aside)
	}
	newer := set(v(11, 2), "new")
	if out, aside := Fresh(Record{}, newer, 10); aside || !Equal(out, newer) {
		t.Fatalf("a write after the stable time: %+v, set aside %v", out, aside)
	}
	op := BeginTyped(Record{}, false, KindSet, v(4, 1), versions(1, 4))
	op.AddMember([]byte("x"))
	op.AddMember([]byte("y"))
	members := op.Delta()
	local := Record{Typed: &Typed{Kind: KindSet, KindVersion: v(4, 1), Members: members.Typed.Members[:1]}}
	out, aside := Fresh(local, members, 10)
	if !aside || out.Typed.Len() != 1 || !slices.Equal(out.Typed.Members[0].Name, local.Typed.Members[0].Name) {
		t.Fatalf("elements: %+v, set aside %v", out.Typed, aside)
	}
}
