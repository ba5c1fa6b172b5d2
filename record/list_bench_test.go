package record

import (
	"fmt"
	"testing"

	"github.com/redmesh/redmesh/hlc"
)

// bigList is a list of n elements in the large form, as n RPUSHes of one
// element each at one node would leave it.
func bigList(n int) Record {
	t := &Typed{Kind: KindList, KindVersion: v(1, 1)}
	for i := range n {
		d := v(uint64(10+i), 1)
		t.Listed = append(t.Listed, Elem{Name: appendLevel(nil, level{int64(i), d}), Dot: d, Value: fmt.Appendf(nil, "element:%012d", i)})
	}
	return Record{Typed: t.Detached()}
}

// A push and a pop at each end of a large list, each a one-element delta
// built and merged as the node's write path does: under an Owner of one
// line renewed every write (a step of one command) and every 16 writes (a
// step of a pipeline of 16), a step's first write taking over the state the
// step before published.
func BenchmarkListWrites(b *testing.B) {
	const n = 200_000
	value := []byte("element:000000000000")
	for _, c := range []struct {
		name string
		fn   func(op *TypedOp, view ListView) error
	}{
		{"lpush", func(op *TypedOp, view ListView) error {
			_, err := op.PushListedRun(nil, view.At(0).Name, [][]byte{value})
			return err
		}},
		{"rpush", func(op *TypedOp, view ListView) error {
			_, err := op.PushListedRun(view.At(view.Len()-1).Name, nil, [][]byte{value})
			return err
		}},
		{"lpop", func(op *TypedOp, view ListView) error {
			op.RemListed(view.At(0).Name)
			return nil
		}},
		{"rpop", func(op *TypedOp, view ListView) error {
			op.RemListed(view.At(view.Len() - 1).Name)
			return nil
		}},
	} {
		for _, step := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/step%d", c.name, step), func(b *testing.B) {
				cur := bigList(n)
				ts := uint64(10 + n)
				line := new(Line)
				var o *Owner
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if i%step == 0 {
						o = NewOwner(line)
					}
					ts++
					delta := listOp(cur, v(ts, 2), func(op *TypedOp) error { return c.fn(op, cur.Typed.ListView()) })
					if i%step == 0 { // the keyspace's state, as a step reads it
						cur, _ = MergePublished(cur, delta, o)
					} else {
						cur, _ = MergeOwned(cur, delta, o)
					}
				}
			})
		}
	}
}

// ZADD of a new member into a large sorted set, as a one-member delta, in
// steps of 16.
func BenchmarkZAdd(b *testing.B) {
	const n = 200_000
	t := &Typed{Kind: KindZSet, KindVersion: v(1, 1)}
	for i := range n {
		t.Scored = append(t.Scored, Elem{Name: fmt.Appendf(nil, "member:%012d", i), Dot: v(uint64(10+i), 1), Value: ScoreValue(float64(i * 7919 % n))})
	}
	cur := Record{Typed: t.Detached()}
	ts := uint64(10 + n)
	b.ReportAllocs()
	b.ResetTimer()
	var o *Owner
	for i := range b.N {
		if i%16 == 0 {
			o = new(Owner) // a step of a pipeline of 16
		}
		ts++
		d := v(ts, 2)
		op := BeginTyped(cur, true, KindZSet, d, func() (Version, error) { ts++; return v(ts, 2), nil })
		if _, err := op.SetScore(fmt.Appendf(nil, "new:%012d", i*7919%1_000_003), float64(i)); err != nil {
			b.Fatal(err)
		}
		cur, _ = MergeOwned(cur, op.Delta(), o)
	}
}

// Collection of a large list's traces: 10,000 pops' traces in a list of
// 200,000, every one stable, and all but the newest 100 (pops go on while
// collection runs).
func BenchmarkCollectTraces(b *testing.B) {
	cur := bigList(200_000)
	ts := uint64(1 << 30)
	o := new(Owner)
	for range 10_000 {
		ts++
		delta := listOp(cur, v(ts, 2), func(op *TypedOp) error {
			op.RemListed(cur.Typed.ListView().At(0).Name)
			return nil
		})
		cur, _ = MergeOwned(cur, delta, o)
	}
	for _, c := range []struct {
		name   string
		stable uint64
	}{{"all", ts}, {"but100", ts - 100}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, dropped := cur.Typed.collect(hlc.Timestamp(c.stable)); !dropped {
					b.Fatal("nothing collected")
				}
			}
		})
	}
}

// HSET, SADD and ZADD of a random name into a hash, a set and a sorted set
// of 63,000 (what redis-benchmark's -r 100000 grows them to, most writes
// then replacing a field or adding a member again), each a delta built and
// merged as the node's write path does, in steps of 1 and 16 (one client's
// command, its pipeline), 256 (pipelines of several clients in one step)
// and of the whole run (step0: a state changed in place throughout, what no
// step boundary costs).
func BenchmarkHashSetWrites(b *testing.B) {
	const n, r = 63_000, 100_000
	name := func(i int) []byte { return fmt.Appendf(nil, "element:%012d", i) }
	for _, c := range []struct {
		kind Kind
		fn   func(op *TypedOp, name []byte, i int) error
	}{
		{KindHash, func(op *TypedOp, name []byte, _ int) error { _, err := op.SetField(name, name); return err }},
		{KindSet, func(op *TypedOp, name []byte, _ int) error { _, err := op.AddMember(name); return err }},
		// a score as random as redis-benchmark's: most writes move a member
		{KindZSet, func(op *TypedOp, name []byte, i int) error {
			_, err := op.SetScore(name, float64(i*31%1000))
			return err
		}},
	} {
		for _, step := range []int{1, 16, 256, 0} {
			b.Run(fmt.Sprintf("%s/step%d", c.kind, step), func(b *testing.B) {
				t := &Typed{Kind: c.kind, KindVersion: v(1, 1)}
				for i := range n {
					e := Elem{Name: name(i * r / n), Dot: v(uint64(10+i), 1)}
					switch c.kind {
					case KindHash:
						e.Value = e.Name
						t.Fields = append(t.Fields, e)
					case KindSet:
						t.Members = append(t.Members, e)
					default:
						e.Value = ScoreValue(float64(i % 1000))
						t.Scored = append(t.Scored, e)
					}
				}
				cur := Record{Typed: t.Detached()}
				ts := uint64(10 + n)
				line := new(Line)
				var o *Owner
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					first := i == 0 || step > 0 && i%step == 0
					if first { // the last step published, as the keyspace's
						o.Release()
						o = NewOwner(line)
					}
					ts++
					op := BeginTyped(cur, true, c.kind, v(ts, 2), func() (Version, error) { ts++; return v(ts, 2), nil })
					if err := c.fn(op, name(i*7919%r), i); err != nil {
						b.Fatal(err)
					}
					if first { // the keyspace's state, as a step reads it
						cur, _ = MergePublished(cur, op.Delta(), o)
					} else {
						cur, _ = MergeOwned(cur, op.Delta(), o)
					}
				}
			})
		}
	}
}
