package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/longdouble"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Hooks for code that keeps the node beside something else than its RESP
// clients (the Redis bridge, an import): writes that enter as local writes,
// each with a fresh version, through the one write path, and a callback on
// every committed write.

// LocalTx is one step of the write path for local writes made on behalf of
// something other than a RESP client. Each write stamps fresh versions, as
// the client command it stands for would.
type LocalTx struct {
	n   *Node
	tx  *keyspace.Tx
	now int64
}

// UpdateLocal runs fn as one step of the write path (one log commit), as a
// client command or a pipeline would; it returns once the step is committed.
func (n *Node) UpdateLocal(ctx context.Context, fn func(*LocalTx) error) error {
	return n.db.Update(ctx, func(tx *keyspace.Tx) error {
		return fn(&LocalTx{n: n, tx: tx, now: n.nowMillis()})
	})
}

// Now is the node's clock, in Unix milliseconds, at the step's start.
func (l *LocalTx) Now() int64 { return l.now }

// Get reads key's record inside the step, and whether a client sees it.
func (l *LocalTx) Get(key []byte) (record.Record, bool, error) {
	rec, err := l.tx.Get(key)
	if err != nil {
		return rec, false, err
	}
	return rec, rec.Live(l.now), nil
}

// SetString writes key as SET ... PXAT at does (at 0: no deadline).
func (l *LocalTx) SetString(key, data []byte, at int64) error {
	return l.n.putString(l.tx, key, data, at)
}

// Delete writes a tombstone for key, as DEL does, if a client sees it.
func (l *LocalTx) Delete(key []byte) error {
	if !liveKey(l.tx, key, l.now) {
		return nil
	}
	return l.n.deleteKey(l.tx, key)
}

// SetExpiry writes only key's expiry register (PEXPIREAT at, or PERSIST
// for 0), if a client sees the key.
func (l *LocalTx) SetExpiry(key []byte, at int64) error {
	if !liveKey(l.tx, key, l.now) {
		return nil
	}
	v, err := l.n.newVersion()
	if err != nil {
		return err
	}
	return l.n.put(l.tx, key, record.Record{Expiry: record.Expiry{Version: v, At: at}})
}

// ErrNoIncrement: an IncrBy that cannot be an increment (the key or field
// holds no integer, or the sum would overflow); nothing was written.
var ErrNoIncrement = errors.New("not an increment of an integer")

// startCounter begins an increment of key (field nil) or of a hash field:
// a live key of the other type is ErrNoIncrement.
func (l *LocalTx) startCounter(key, field []byte, what string) (*typedWrite, error) {
	kind := record.KindString
	if field != nil {
		kind = record.KindHash
	}
	cur, err := l.tx.Get(key)
	if err != nil {
		return nil, err
	}
	live := cur.Live(l.now)
	if live && cur.Kind() != kind {
		return nil, fmt.Errorf("%s of %q, a %s: %w", what, key, cur.Kind(), ErrNoIncrement)
	}
	return l.n.startTyped(key, cur, live, kind)
}

// IncrBy adds by to key's integer as INCRBY does (field nil), or to a hash
// field's as HINCRBY does: the key or field becomes a counter, whose
// increments made concurrently at other nodes add up. A key or field that
// is not there starts from 0; one that holds no integer, or a sum that
// would overflow, is ErrNoIncrement.
func (l *LocalTx) IncrBy(key, field []byte, by int64) error {
	w, err := l.startCounter(key, field, "increment")
	if err != nil {
		return err
	}
	if _, err := w.incrInt(l.tx, field, by); err != nil {
		if errors.As(err, new(replyErr)) {
			return fmt.Errorf("increment of %q by %d: %w", key, by, ErrNoIncrement)
		}
		return err
	}
	return nil
}

// IncrByFloat moves key's value (field nil), or a hash field's, by what
// took a value from was to now, as INCRBYFLOAT and HINCRBYFLOAT do: the key
// or field becomes a float counter, whose increments made concurrently at
// other nodes add up. One that holds was comes to hold now, as written;
// any other value moves by now less was, in long double as Redis computes
// (a key or field that is not there starts from 0). A value, was or now
// that is not a number, or a result out of range, is ErrNoIncrement, and
// nothing is written.
func (l *LocalTx) IncrByFloat(key, field, was, now []byte) error {
	w, err := l.startCounter(key, field, "float increment")
	if err != nil {
		return err
	}
	value, had, base := w.cur.StringData(), w.live, w.cur.CounterBase()
	counted := had // the counter is there (see cmdHIncrByFloat)
	if field != nil {
		value, had = w.cur.Typed.FieldValue(field)
		had = had && w.live
		e, _ := w.cur.Typed.Field(field)
		base, counted = e.Value, had && !e.Dot.IsZero()
	}
	from, fromOK := longdouble.Parse(was)
	to, toOK := longdouble.Parse(now)
	if !fromOK || !toOK || from.IsInf() || to.IsInf() {
		return fmt.Errorf("float increment of %q from %q to %q: %w", key, was, now, ErrNoIncrement)
	}
	result := string(now)
	if !had || !bytes.Equal(value, was) {
		old := longdouble.New()
		if had {
			var ok bool
			if old, ok = longdouble.Parse(value); !ok || old.IsInf() {
				return fmt.Errorf("float increment of %q, holding %q: %w", key, value, ErrNoIncrement)
			}
		}
		sum := longdouble.New().Add(old, longdouble.New().Sub(to, from))
		if longdouble.Overflows(sum) {
			return fmt.Errorf("float increment of %q: %w", key, ErrNoIncrement)
		}
		result = longdouble.Format(sum)
	}
	if err := w.incrFloat(l.tx, field, base, counted, result); err != nil {
		if errors.As(err, new(replyErr)) {
			return fmt.Errorf("float increment of %q to %s: %w", key, result, ErrNoIncrement)
		}
		return err
	}
	return nil
}

// TypedEdit is a field- or member-level write of a hash, set or sorted set.
type TypedEdit struct {
	Kind record.Kind // record.KindHash, record.KindSet or record.KindZSet
	// Set are hash fields to write (name, value, name, value ...); Del hash
	// fields to remove. Add and Rem are set or sorted-set members (Add with
	// Scores, one each, for a sorted set). Incr are sorted-set members to
	// increment, by By, one each, as ZINCRBY does.
	Set, Del, Add, Rem, Incr [][]byte
	Scores, By               []float64
	// At is the key's deadline when WithExpiry is true.
	At         int64
	WithExpiry bool
}

// EditTyped writes e to key as HSET/HDEL, SADD/SREM or ZADD/ZREM would,
// element by element, so that it merges with concurrent edits elsewhere as
// those commands do. A key a client sees as another type is replaced (its
// contents removed as observed), as DEL followed by HSET would.
func (l *LocalTx) EditTyped(key []byte, e TypedEdit) error {
	if e.Kind == record.KindZSet && (len(e.Scores) != len(e.Add) || len(e.By) != len(e.Incr)) {
		return fmt.Errorf("sorted-set edit of %q: %d members, %d scores, %d increments of %d", key, len(e.Add), len(e.Scores), len(e.Incr), len(e.By))
	}
	if e.Kind != record.KindZSet && len(e.Incr) > 0 {
		return fmt.Errorf("edit of %q: increments of a %s", key, e.Kind)
	}
	cur, err := l.tx.Get(key)
	if err != nil {
		return err
	}
	live := cur.Live(l.now)
	if live && cur.Kind() != e.Kind {
		live = false
	}
	w, err := l.n.startTyped(key, cur, live, e.Kind)
	if err != nil {
		return err
	}
	for i := 0; i+1 < len(e.Set); i += 2 {
		if err := w.setField(e.Set[i], e.Set[i+1]); err != nil {
			return err
		}
	}
	for _, f := range e.Del {
		w.delField(f)
	}
	for i, m := range e.Add {
		if e.Kind == record.KindZSet {
			if _, err := w.op.SetScore(m, e.Scores[i]+0); err != nil { // -0 is 0, as ZADD stores it
				return err
			}
		} else if err := w.addMember(m); err != nil {
			return err
		}
	}
	for i, m := range e.Incr {
		if err := w.incrScore(m, e.By[i]); err != nil {
			return err
		}
	}
	for _, m := range e.Rem {
		if e.Kind == record.KindZSet {
			w.op.RemScored(m)
		} else {
			w.remMember(m)
		}
	}
	if e.WithExpiry {
		w.rec.Expiry = record.Expiry{Version: w.v, At: e.At}
	}
	return w.commit(l.tx)
}

// incrScore is ZINCRBY's write of member, as zadd's with INCR: an increment
// that adds up with concurrent ones, or, where the result would not be
// finite, the resulting score set.
func (w *typedWrite) incrScore(member []byte, by float64) error {
	cur, exists := w.score(member)
	if !exists {
		if math.IsInf(by, 0) || math.IsNaN(by) {
			_, err := w.op.SetScore(member, by+0)
			return err
		}
		if _, err := w.op.SetScore(member, 0); err != nil {
			return err
		}
		w.op.IncrScore(member, by)
		return nil
	}
	score := cur + by
	if math.IsNaN(score) {
		return replyErr(errZNaN)
	}
	if own := w.op.OwnScoreTotal(member) + by; !math.IsInf(own, 0) && !math.IsNaN(own) && !math.IsInf(score, 0) {
		w.op.IncrScore(member, by)
		return nil
	}
	_, err := w.op.SetScore(member, score)
	return err
}

// ListEdit is a write of a list at its ends and in place, as LPOP/RPOP,
// LPUSH/RPUSH and LSET would: DropHead and DropTail elements are popped,
// and the elements at the indexes Drop (of the list as it was); Set gives
// the values of elements by index among those left after DropHead; then
// Head is pushed before the elements kept (in list order) and Tail after.
type ListEdit struct {
	DropHead, DropTail int
	Drop               []int
	Set                map[int][]byte
	Head, Tail         [][]byte
	At                 int64
	WithExpiry         bool
}

// EditList writes e to key in one write. A key a client sees as another
// type is replaced, as DEL followed by RPUSH would.
func (l *LocalTx) EditList(key []byte, e ListEdit) error {
	cur, err := l.tx.Get(key)
	if err != nil {
		return err
	}
	live := cur.Live(l.now) && cur.Kind() == record.KindList
	w, err := l.n.startTyped(key, cur, live, record.KindList)
	if err != nil {
		return err
	}
	var view record.ListView
	if live {
		view = cur.Typed.ListView()
	}
	n := view.Len()
	if e.DropHead < 0 || e.DropTail < 0 || e.DropHead+e.DropTail > n {
		return fmt.Errorf("list edit of %q: pops %d and %d of %d elements", key, e.DropHead, e.DropTail, n)
	}
	for i := range e.Set {
		if i < 0 || e.DropHead+i >= n-e.DropTail {
			return fmt.Errorf("list edit of %q: LSET of index %d among %d elements", key, i, n-e.DropHead-e.DropTail)
		}
	}
	drop := make(map[int]bool, len(e.Drop))
	for _, i := range e.Drop {
		if i < 0 || i >= n {
			return fmt.Errorf("list edit of %q: removal of index %d of %d elements", key, i, n)
		}
		drop[i] = true
	}
	var lo, hi []byte // the last and the first element kept: the pushes' bounds
	// the positions of the elements set, by index
	set := make(map[int][]byte, len(e.Set))
	i := 0
	// One walk: At(i) on each index would decode its leaf from the start
	// each time.
	view.Ascend(0, func(el record.Elem) bool {
		if _, ok := e.Set[i-e.DropHead]; ok {
			set[i-e.DropHead] = el.Name
		}
		if i < e.DropHead || i >= n-e.DropTail || drop[i] {
			w.op.RemListed(el.Name)
		} else {
			if hi == nil {
				hi = el.Name
			}
			lo = el.Name
		}
		i++
		return true
	})
	for i, v := range e.Set {
		if err := w.op.SetListed(set[i], v); err != nil {
			return err
		}
	}
	if len(e.Head) > 0 {
		if _, err := w.op.PushListedRun(nil, hi, e.Head); err != nil {
			return err
		}
	}
	if len(e.Tail) > 0 {
		if _, err := w.op.PushListedRun(lo, nil, e.Tail); err != nil {
			return err
		}
	}
	if e.WithExpiry {
		w.rec.Expiry = record.Expiry{Version: w.v, At: e.At}
	}
	return w.commit(l.tx)
}

// Read is key's record as a reader outside the write path sees it, and
// whether a client sees the key now.
func (n *Node) Read(key []byte) (record.Record, bool) {
	rec := n.db.Get(key)
	return rec, rec.Live(n.nowMillis())
}

// OnCommit sets a function called after each commit with its entries (local
// writes, peers' records, expiry sweeps alike), on the committer's
// goroutine: it must not block, nor keep the entries' slices. nil removes it.
func (n *Node) OnCommit(fn func(entries []wal.Entry)) {
	if fn == nil {
		n.commitHook.Store(nil)
		return
	}
	n.commitHook.Store(&fn)
}

// ScanKeys walks the keyspace from cursor (0: the start) as SCAN does,
// calling fn with a copy of each key (tombstones included) and its record
// without data; it returns the cursor to go on from, 0 at the end.
func (n *Node) ScanKeys(cursor uint64, fn func(key []byte, rec record.Record) bool) uint64 {
	return n.db.Table().Scan(cursor, fn)
}

// SetInfo sets the lines of INFO's Bridge section (nil: no such section).
func (n *Node) SetInfo(fn func() []string) {
	if fn == nil {
		n.infoHook.Store(nil)
		return
	}
	n.infoHook.Store(&fn)
}

func infoExtra(n *Node) []string {
	if fn := n.infoHook.Load(); fn != nil {
		return (*fn)()
	}
	return nil
}
