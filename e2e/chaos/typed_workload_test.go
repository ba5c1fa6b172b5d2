package chaos

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The typed keys' sizes: few keys and elements, so that writes at different
// nodes meet on the same elements often.
const (
	typedKeys   = 6
	setMembers  = 8 // m0..m7
	hashFields  = 6 // f0..f5, written by HSET and HDEL
	hashCounts  = 3 // n0..n2, written by HINCRBY only
	zsetMembers = 6 // a0..a5, written by ZADD and ZREM
	zsetCounts  = 3 // i0..i2, written by ZINCRBY only
	listKeys    = 4 // list/0..list/3: fewer keys than the others, so that lists grow and pops meet
)

// typedStep issues one typed request; r in [0, 1) picks its class.
func (w *worker) typedStep(ctx context.Context, r float64, val string) {
	key := func(class string) string { return fmt.Sprintf("%s/%d", class, w.rng.IntN(typedKeys)) }
	switch {
	case r < 0.15:
		w.typed(ctx, op{Kind: opIncr, Key: key("cnt"), Delta: w.delta()})
	case r < 0.32:
		o := op{Kind: opSAdd, Key: key("set"), Elem: fmt.Sprintf("m%d", w.rng.IntN(setMembers))}
		if w.rng.IntN(5) < 2 {
			o.Kind = opSRem
		}
		w.typed(ctx, o)
	case r < 0.49:
		o := op{Key: key("hash")}
		switch x := w.rng.IntN(20); {
		case x < 8:
			o.Kind, o.Elem, o.Value = opHSet, fmt.Sprintf("f%d", w.rng.IntN(hashFields)), val
		case x < 13:
			o.Kind, o.Elem = opHDel, fmt.Sprintf("f%d", w.rng.IntN(hashFields))
		default:
			o.Kind, o.Elem, o.Delta = opHIncr, fmt.Sprintf("n%d", w.rng.IntN(hashCounts)), w.delta()
		}
		w.typed(ctx, o)
	case r < 0.66:
		o := op{Key: key("zset")}
		switch x := w.rng.IntN(20); {
		case x < 7:
			o.Kind, o.Elem, o.Delta = opZAdd, fmt.Sprintf("a%d", w.rng.IntN(zsetMembers)), w.rng.Int64N(2001)-1000
		case x < 12:
			o.Kind, o.Elem = opZRem, fmt.Sprintf("a%d", w.rng.IntN(zsetMembers))
		default:
			o.Kind, o.Elem, o.Delta = opZIncr, fmt.Sprintf("i%d", w.rng.IntN(zsetCounts)), w.delta()
		}
		w.typed(ctx, o)
	case r < 0.87:
		w.listStep(ctx, fmt.Sprintf("list/%d", w.rng.IntN(listKeys)), val)
	default:
		if len(w.tpending) > 0 && w.rng.IntN(2) == 0 {
			k := w.tpending[0]
			w.tpending = w.tpending[1:]
			w.del(ctx, k)
			return
		}
		o := op{Key: fmt.Sprintf("tdel/%d/%d/%d", w.node, w.id, w.seq), Elem: "x"}
		var acked bool
		switch w.rng.IntN(5) {
		case 0:
			o.Kind, o.Elem, o.Delta = opIncr, "", w.delta()
		case 1:
			o.Kind = opSAdd
		case 2:
			o.Kind, o.Value = opHSet, val
		case 3:
			o.Kind, o.Delta = opZAdd, 1
		default:
			o.Kind, o.Elem, o.Value = opRPush, "", val
			acked = w.list(ctx, o)
		}
		if o.Kind != opRPush {
			acked = w.typed(ctx, o)
		}
		if acked {
			w.tpending = append(w.tpending, o.Key)
		}
	}
}

// delta draws an increment: 1 to 100, negative a third of the time.
func (w *worker) delta() int64 {
	d := 1 + w.rng.Int64N(100)
	if w.rng.IntN(3) == 0 {
		d = -d
	}
	return d
}

// typed issues typed write o and records it with its integer reply; true
// if it was acknowledged.
func (w *worker) typed(ctx context.Context, o op) bool {
	o.Invoke = time.Now()
	var cmd *redis.Cmd
	switch o.Kind {
	case opIncr:
		switch {
		case o.Delta%2 != 0:
			// Odd increments go as INCRBYFLOAT (of an integer, so that the
			// sum stays exact): a counter takes both, and adds up all.
			cmd = w.c.Do(ctx, "INCRBYFLOAT", o.Key, o.Delta)
		case o.Delta < 0:
			cmd = w.c.Do(ctx, "DECRBY", o.Key, -o.Delta)
		default:
			cmd = w.c.Do(ctx, "INCRBY", o.Key, o.Delta)
		}
	case opSAdd:
		cmd = w.c.Do(ctx, "SADD", o.Key, o.Elem)
	case opSRem:
		cmd = w.c.Do(ctx, "SREM", o.Key, o.Elem)
	case opHSet:
		cmd = w.c.Do(ctx, "HSET", o.Key, o.Elem, o.Value)
	case opHDel:
		cmd = w.c.Do(ctx, "HDEL", o.Key, o.Elem)
	case opHIncr:
		name := "HINCRBY"
		if o.Delta%2 != 0 {
			name = "HINCRBYFLOAT" // as INCRBYFLOAT above
		}
		cmd = w.c.Do(ctx, name, o.Key, o.Elem, o.Delta)
	case opZAdd:
		// CH: the reply says whether the write changed anything (and so
		// made a dot); a ZADD of the score the member has does not.
		cmd = w.c.Do(ctx, "ZADD", o.Key, "CH", o.Delta, o.Elem)
	case opZIncr:
		cmd = w.c.Do(ctx, "ZINCRBY", o.Key, o.Delta, o.Elem)
	case opZRem:
		cmd = w.c.Do(ctx, "ZREM", o.Key, o.Elem)
	default:
		panic(fmt.Sprintf("typed: %v", o.Kind))
	}
	raw, err := cmd.Result()
	if err == nil {
		switch v := raw.(type) {
		case int64:
			o.Reply = v
		case string: // ZINCRBY's new score, INCRBYFLOAT's and HINCRBYFLOAT's value
			var f float64
			if f, err = strconv.ParseFloat(v, 64); err == nil {
				o.Reply = int64(f)
			}
		default:
			err = fmt.Errorf("%v replied %#v", o.Kind, raw)
		}
	}
	return w.record(o, err).Outcome == ok
}
