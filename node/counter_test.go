package node

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// TestIncrNewIsTheGeneralPath: the record incrNew applies to a key never
// written is the delta the general path (beginTyped, incrInt) builds for
// such a key, to the byte the log gets; and INCRBY of a key never written
// answers the increment and leaves that record.
func TestIncrNewIsTheGeneralPath(t *testing.T) {
	n, c := openPeer(t, t.TempDir())
	for _, by := range []int64{1, -7, 0, math.MaxInt64, math.MinInt64} {
		var general, fast record.Record
		err := n.db.Update(context.Background(), func(tx *keyspace.Tx) error {
			key := []byte("general:" + strconv.FormatInt(by, 10))
			w, err := n.beginTyped(tx, key, record.KindString, n.nowMillis())
			if err != nil {
				return err
			}
			if _, err := w.incrInt(tx, nil, by); err != nil {
				return err
			}
			general, fast = w.op.Delta(), counterRecord(newCounter(w.v, n.counterID, by))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !record.Equal(general, fast) || !bytes.Equal(record.AppendBinary(nil, general), record.AppendBinary(nil, fast)) {
			t.Fatalf("INCRBY %d of a new key: the general path's delta %+v, newCounter's %+v", by, general, fast)
		}
		key := "fast:" + strconv.FormatInt(by, 10)
		if got, err := c.IncrBy(context.Background(), key, by).Result(); err != nil || got != by {
			t.Fatalf("INCRBY %s %d: %d, %v", key, by, got, err)
		}
		rec := n.db.Get([]byte(key))
		want := counterRecord(newCounter(rec.Value.Version, n.counterID, by))
		if !record.Equal(rec, want) {
			t.Fatalf("INCRBY %s %d left %+v, want %+v", key, by, rec, want)
		}
	}
}

// counterRecord is the record of registers rec and typed state st.
func counterRecord(rec record.Record, st record.CounterState) record.Record {
	rec.Typed = st.Typed()
	return rec
}

// TestDecrToZeroKeepsDeletedCounter: a DEL that did not observe a peer's
// increments leaves the key holding them; a DECRBY that brings them to 0
// leaves the key at "0", as Redis shows a counter decremented to 0, on
// both nodes.
func TestDecrToZeroKeepsDeletedCounter(t *testing.T) {
	ctx := context.Background()
	a, ca := openPeer(t, t.TempDir())
	b, cb := openPeer(t, t.TempDir())
	mustDo(t, ca, "SET", "k", "10")
	reconcile(t, a, b)
	mustDo(t, cb, "INCRBY", "k", "5") // a never sees it before its DEL
	mustDo(t, ca, "DEL", "k")
	reconcile(t, a, b)
	for _, c := range []*redis.Client{ca, cb} {
		if got, err := c.Get(ctx, "k").Result(); err != nil || got != "5" {
			t.Fatalf("after the DEL and the unseen INCRBY: %q, %v; want 5", got, err)
		}
	}
	if got, err := ca.DecrBy(ctx, "k", 5).Result(); err != nil || got != 0 {
		t.Fatalf("DECRBY k 5: %d, %v; want 0", got, err)
	}
	reconcile(t, a, b)
	for _, c := range []*redis.Client{ca, cb} {
		if got, err := c.Get(ctx, "k").Result(); err != nil || got != "0" {
			t.Fatalf("a counter decremented to 0: %q, %v; want 0 as Redis", got, err)
		}
		if n := c.Exists(ctx, "k").Val(); n != 1 {
			t.Fatalf("EXISTS of a counter at 0: %d, want 1", n)
		}
	}
}

// TestCounterBeyondInt64: increments made at two nodes each within an
// int64 add up past one; both nodes show the exact sum, not a sum wrapped
// around, and an INCR of it is refused as Redis refuses an INCR of such a
// string. A local increment past an int64 is refused as in Redis.
func TestCounterBeyondInt64(t *testing.T) {
	ctx := context.Background()
	a, ca := openPeer(t, t.TempDir())
	b, cb := openPeer(t, t.TempDir())
	mustDo(t, ca, "SET", "k", "0")
	reconcile(t, a, b)
	mustDo(t, ca, "INCRBY", "k", "9223372036854775807")
	mustDo(t, cb, "INCRBY", "k", "2")
	if err := ca.Incr(ctx, "k").Err(); err == nil || err.Error() != errOverflow {
		t.Fatalf("INCR past an int64 at one node: %v, want %q", err, errOverflow)
	}
	reconcile(t, a, b)
	for _, c := range []*redis.Client{ca, cb} {
		if got, err := c.Get(ctx, "k").Result(); err != nil || got != "9223372036854775809" {
			t.Fatalf("counts adding past an int64: %q, %v; want 9223372036854775809", got, err)
		}
		if err := c.Incr(ctx, "k").Err(); err == nil || err.Error() != errNotInteger {
			t.Fatalf("INCR of a counter past an int64: %v, want %q", err, errNotInteger)
		}
	}
	// Back within an int64 (a DECRBY is refused as INCR is; a SET resets
	// every count observed), the counter counts again.
	mustDo(t, cb, "SET", "k", "-1")
	if got, err := cb.Incr(ctx, "k").Result(); err != nil || got != 0 {
		t.Fatalf("INCR after the SET: %d, %v; want 0", got, err)
	}
}

func mustDo(t *testing.T, c *redis.Client, args ...any) {
	t.Helper()
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// TestIncrAfterSetStartsAgain: a SET resets every increment it observed;
// a node whose count it reset whole counts again from zero, so an INCR
// after it is bounded by the value shown, as in Redis, not by the total
// the SET reset; and the new run replaces the reset one at a peer alike.
func TestIncrAfterSetStartsAgain(t *testing.T) {
	ctx := context.Background()
	a, ca := openPeer(t, t.TempDir())
	b, cb := openPeer(t, t.TempDir())
	mustDo(t, ca, "INCRBY", "k", "9223372036854775807")
	reconcile(t, a, b)
	mustDo(t, cb, "SET", "k", "0") // observed a's count whole
	reconcile(t, a, b)
	if got, err := ca.Incr(ctx, "k").Result(); err != nil || got != 1 {
		t.Fatalf("INCR after a SET reset a count at the int64 bound: %d, %v; want 1 as Redis", got, err)
	}
	mustDo(t, cb, "INCRBY", "k", "10")
	reconcile(t, a, b)
	for _, c := range []*redis.Client{ca, cb} {
		if got, err := c.Get(ctx, "k").Result(); err != nil || got != "11" {
			t.Fatalf("after the new run met b's increments: %q, %v; want 11", got, err)
		}
	}
}

// TestHincrbyToZeroKeepsDeletedField: an HDEL (or a DEL of the hash) that
// did not observe a peer's HINCRBY leaves the field holding that
// increment; an HINCRBY or HINCRBYFLOAT that brings it to 0 leaves the
// field at "0", as Redis shows a field incremented to 0, on both nodes.
func TestHincrbyToZeroKeepsDeletedField(t *testing.T) {
	ctx := context.Background()
	hincrby := func(c *redis.Client) (string, error) {
		n, err := c.HIncrBy(ctx, "h", "f", -5).Result()
		return strconv.FormatInt(n, 10), err
	}
	hincrbyfloat := func(c *redis.Client) (string, error) {
		return c.Do(ctx, "HINCRBYFLOAT", "h", "f", "-5").Text()
	}
	for _, tc := range []struct {
		name, unseen, del string
		incr              func(c *redis.Client) (string, error)
	}{
		{"HDEL then HINCRBY", "HINCRBY", "HDEL", hincrby},
		{"DEL then HINCRBY", "HINCRBY", "DEL", hincrby},
		{"HDEL then HINCRBYFLOAT", "HINCRBY", "HDEL", hincrbyfloat},
		{"DEL then HINCRBYFLOAT", "HINCRBY", "DEL", hincrbyfloat},
		// Float increments unseen: HINCRBY counts as a float.
		{"unseen HINCRBYFLOAT, HDEL then HINCRBY", "HINCRBYFLOAT", "HDEL", hincrby},
		{"unseen HINCRBYFLOAT, DEL then HINCRBY", "HINCRBYFLOAT", "DEL", hincrby},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ca := openPeer(t, t.TempDir())
			b, cb := openPeer(t, t.TempDir())
			mustDo(t, ca, "HSET", "h", "f", "10", "other", "x")
			reconcile(t, a, b)
			mustDo(t, cb, tc.unseen, "h", "f", "5") // a never sees it before its delete
			if tc.del == "HDEL" {
				mustDo(t, ca, "HDEL", "h", "f")
			} else {
				mustDo(t, ca, "DEL", "h")
			}
			reconcile(t, a, b)
			for _, c := range []*redis.Client{ca, cb} {
				if got, err := c.HGet(ctx, "h", "f").Result(); err != nil || got != "5" {
					t.Fatalf("after the %s and the unseen %s: %q, %v; want 5", tc.del, tc.unseen, got, err)
				}
			}
			if got, err := tc.incr(ca); err != nil || got != "0" {
				t.Fatalf("the increment to 0: %q, %v; want 0", got, err)
			}
			reconcile(t, a, b)
			for _, c := range []*redis.Client{ca, cb} {
				if got, err := c.HGet(ctx, "h", "f").Result(); err != nil || got != "0" {
					t.Fatalf("a field incremented to 0: %q, %v; want 0 as Redis", got, err)
				}
				if ok := c.HExists(ctx, "h", "f").Val(); !ok {
					t.Fatal("HEXISTS of a field at 0: false, want true")
				}
				if n := c.Exists(ctx, "h").Val(); n != 1 {
					t.Fatalf("EXISTS of a hash whose one field is at 0: %d, want 1", n)
				}
			}
		})
	}
}

// TestIncrKeepsDeadlineAndCountsAtPeers: INCRs of a counter only this node
// increments (written in place, incrCounted) keep the key's deadline, as
// in Redis, reach a peer as increments, and add up with the peer's own,
// after which both nodes' increments take the general path alike.
func TestIncrKeepsDeadlineAndCountsAtPeers(t *testing.T) {
	ctx := context.Background()
	a, ca := openPeer(t, t.TempDir())
	b, cb := openPeer(t, t.TempDir())
	mustDo(t, ca, "SET", "k", "100", "EX", "1000")
	for i := range 20 {
		if got, err := ca.Incr(ctx, "k").Result(); err != nil || got != int64(101+i) {
			t.Fatalf("INCR %d: %d, %v; want %d", i, got, err, 101+i)
		}
	}
	if ttl := ca.TTL(ctx, "k").Val(); ttl <= 0 {
		t.Fatalf("TTL after the INCRs: %v, want the deadline kept", ttl)
	}
	reconcile(t, a, b)
	if got, err := cb.Get(ctx, "k").Result(); err != nil || got != "120" {
		t.Fatalf("the peer after the INCRs: %q, %v; want 120", got, err)
	}
	mustDo(t, cb, "INCRBY", "k", "5")
	mustDo(t, ca, "INCRBY", "k", "7")
	reconcile(t, a, b)
	for _, c := range []*redis.Client{ca, cb} {
		if got, err := c.Get(ctx, "k").Result(); err != nil || got != "132" {
			t.Fatalf("after increments at both nodes: %q, %v; want 132", got, err)
		}
	}
	if got, err := ca.Incr(ctx, "k").Result(); err != nil || got != 133 {
		t.Fatalf("INCR over two nodes' counts: %d, %v; want 133", got, err)
	}
	mustDo(t, ca, "SET", "k", "9223372036854775806")
	mustDo(t, ca, "INCR", "k")
	if err := ca.Incr(ctx, "k").Err(); err == nil || err.Error() != errOverflow {
		t.Fatalf("INCR past an int64: %v, want %q", err, errOverflow)
	}
}
