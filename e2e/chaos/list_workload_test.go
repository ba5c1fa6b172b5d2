package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// listStep issues one request to list key: a push at either end, a pop
// from either end, an LINSERT next to the last value this worker wrote
// there, or an LSET near an end. Pushes and inserts outnumber pops a
// little, so the lists grow slowly through a run.
func (w *worker) listStep(ctx context.Context, key, val string) {
	o := op{Key: key, Value: val}
	switch x := w.rng.IntN(20); {
	case x < 3:
		o.Kind = opLPush
	case x < 6:
		o.Kind = opRPush
	case x < 9:
		o.Kind, o.Value = opLPop, ""
	case x < 12:
		o.Kind, o.Value = opRPop, ""
	case x < 15:
		o.Kind, o.Elem = opLInsert, w.lastPush[key]
		if o.Elem == "" {
			o.Elem = "none" // no such value: LINSERT answers -1 or 0
		}
	default:
		o.Kind, o.Index = opLSet, []int64{0, 1, -1, -2}[w.rng.IntN(4)]
	}
	w.list(ctx, o)
}

// list issues list request o and records what came of it; true if it was
// acknowledged.
func (w *worker) list(ctx context.Context, o op) bool {
	o.Invoke = time.Now()
	var err error
	switch o.Kind {
	case opLPush, opRPush:
		cmd := "LPUSH"
		if o.Kind == opRPush {
			cmd = "RPUSH"
		}
		o.Reply, err = w.c.Do(ctx, cmd, o.Key, o.Value).Int64()
	case opLPop, opRPop:
		cmd := "LPOP"
		if o.Kind == opRPop {
			cmd = "RPOP"
		}
		o.Value, err = w.c.Do(ctx, cmd, o.Key).Text()
		switch {
		case errors.Is(err, redis.Nil):
			err = nil
		case err == nil:
			o.Reply = 1
		}
	case opLInsert:
		where := "BEFORE"
		if w.rng.IntN(2) == 0 {
			where = "AFTER"
		}
		o.Reply, err = w.c.Do(ctx, "LINSERT", o.Key, where, o.Elem, o.Value).Int64()
	case opLSet:
		o.Elem, err = w.lset(ctx, o.Key, o.Index, o.Value)
	default:
		panic(fmt.Sprintf("list: %v", o.Kind))
	}
	o = w.record(o, err)
	if o.Outcome == ok && (o.Kind == opLPush || o.Kind == opRPush || o.Kind == opLInsert && o.Reply > 0 || o.Kind == opLSet) {
		if w.lastPush == nil {
			w.lastPush = map[string]string{}
		}
		w.lastPush[o.Key] = o.Value
	}
	return o.Outcome == ok
}

// lset is LINDEX and LSET of one index in one MULTI: the value LSET
// overwrote, so that the checker can follow it.
func (w *worker) lset(ctx context.Context, key string, index int64, val string) (string, error) {
	var old *redis.StringCmd
	var set *redis.StatusCmd
	_, err := w.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		old = p.LIndex(ctx, key, index)
		set = p.LSet(ctx, key, index, val)
		return nil
	})
	// An index out of range (or no list) fails LSET, and LINDEX answers
	// nil: the MULTI ran, and LSET's error is the outcome (refused).
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", err
	}
	if err := set.Err(); err != nil {
		return "", err
	}
	return old.Val(), old.Err()
}
