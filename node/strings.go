package node

import (
	"bytes"
	"math"
	"strings"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/longdouble"
	"github.com/redmesh/redmesh/record"
)

// String commands beyond GET and SET (keys.go).
//
// A command that changes only a value (APPEND, SETRANGE, INCR...) writes only
// the value register of a live key, so the key keeps its TTL as in Redis and
// a concurrent EXPIRE elsewhere is not undone. On a key that is absent or
// expired it writes both registers at one version, so that an old deadline
// cannot expire the new value.

const (
	errNotFloat       = "ERR value is not a valid float"
	errFloatNaN       = "ERR increment would produce NaN or Infinity"
	errOverflow       = "ERR increment or decrement would overflow"
	errOffsetRange    = "ERR offset is out of range"
	errStringTooLarge = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
)

// maxStringLen bounds a string that APPEND or SETRANGE builds, as Redis's
// proto-max-bulk-len does (512 MB by default).
func (n *Node) maxStringLen() int64 { return n.cfg.ProtoMaxBulkLen }

// checkStringLength is Redis's: a string of size grown by add must stay within
// the bulk length limit.
func (n *Node) checkStringLength(size, add int64) error {
	if size+add > n.maxStringLen() || size+add < size {
		return replyErr(errStringTooLarge)
	}
	return nil
}

// liveString checks a record a command reads as a string: whether the client
// sees it, and WRONGTYPE if it holds another kind.
func liveString(rec record.Record, now int64) (bool, error) {
	if !rec.Live(now) {
		return false, nil
	}
	if rec.Kind() != record.KindString {
		return true, replyErr(errWrongType)
	}
	return true, nil
}

// readString reads key as a string outside the write path (or through the open
// transaction inside EXEC), counting keyspace hits and misses.
func (c *client) readString(key []byte) ([]byte, bool, error) {
	rec, err := c.get(key)
	if err != nil {
		return nil, false, err
	}
	live, err := liveString(rec, c.n.nowMillis())
	if err != nil {
		return nil, false, err
	}
	if !live {
		c.counts.misses.Add(1)
		return nil, false, nil
	}
	c.counts.hits.Add(1)
	return rec.StringData(), true, nil
}

// txString reads key as a string inside the write path.
func txString(tx *keyspace.Tx, key []byte, now int64) (record.Record, bool, error) {
	cur, err := tx.Get(key)
	if err != nil {
		return cur, false, err
	}
	live, err := liveString(cur, now)
	return cur, live, err
}

// liveKey reports whether key holds a value at now, from versions and
// deadline alone: an existence check needs no storage read.
func liveKey(tx *keyspace.Tx, key []byte, now int64) bool {
	cur, _ := tx.Peek(key)
	return cur.Live(now)
}

// putString writes key as SET without KEEPTTL does: value and expiry (at,
// Unix ms, 0 for none) at one version.
func (n *Node) putString(tx *keyspace.Tx, key, data []byte, at int64) error {
	v, err := n.newVersion()
	if err != nil {
		return err
	}
	return n.putStringAt(tx, key, data, at, v)
}

// putStringAt is putString at version v.
func (n *Node) putStringAt(tx *keyspace.Tx, key, data []byte, at int64, v record.Version) error {
	rec := record.Record{
		Value:  record.Value{Version: v, Data: data},
		Expiry: record.Expiry{Version: v, At: at},
	}
	return n.put(tx, key, rec)
}

// putValue writes a new value for key, keeping a live key's TTL: only the
// value register is written when live is true.
func (n *Node) putValue(tx *keyspace.Tx, key, data []byte, live bool) error {
	if !live {
		return n.putString(tx, key, data, 0)
	}
	v, err := n.newVersion()
	if err != nil {
		return err
	}
	err = n.put(tx, key, record.Record{Value: record.Value{Version: v, Data: data}})
	return err
}

// expireMillis is Redis's getExpireMillisecondsOrReply: SET's, SETEX's and
// GETEX's expiry argument as an absolute deadline in Unix ms.
func expireMillis(now int64, arg []byte, unit int64, absolute bool, cmd string) (int64, error) {
	v, ok := parseInt(arg)
	if !ok {
		return 0, replyErr(errNotInteger)
	}
	if v <= 0 || v > math.MaxInt64/unit {
		return 0, replyErr(errInvalidExpire(cmd))
	}
	ms := v * unit
	if !absolute {
		if ms > math.MaxInt64-now {
			return 0, replyErr(errInvalidExpire(cmd))
		}
		ms += now
	}
	return ms, nil
}

func cmdSetNX(n *Node, c *client, args [][]byte) {
	key, val := args[1], args[2]
	done := false
	err := c.update(func(tx *keyspace.Tx) error {
		done = false
		if liveKey(tx, key, n.nowMillis()) {
			return nil
		}
		if err := n.putString(tx, key, val, 0); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(boolInt(done))
}

func cmdSetEX(n *Node, c *client, args [][]byte)  { setExpiring(n, c, args, 1000, "setex") }
func cmdPSetEX(n *Node, c *client, args [][]byte) { setExpiring(n, c, args, 1, "psetex") }

// setExpiring is SETEX and PSETEX: key, time, value.
func setExpiring(n *Node, c *client, args [][]byte, unit int64, name string) {
	err := c.update(func(tx *keyspace.Tx) error {
		at, err := expireMillis(n.nowMillis(), args[2], unit, false, name)
		if err != nil {
			return err
		}
		return n.putString(tx, args[1], args[3], at)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteString("OK")
}

func cmdGetSet(n *Node, c *client, args [][]byte) {
	var (
		old  record.Record
		live bool
	)
	err := c.update(func(tx *keyspace.Tx) error {
		var err error
		if old, live, err = txString(tx, args[1], n.nowMillis()); err != nil {
			return err
		}
		return n.putString(tx, args[1], args[2], 0)
	})
	n.replyRead(c, err, old, live)
}

func cmdGetDel(n *Node, c *client, args [][]byte) {
	var (
		old  record.Record
		live bool
	)
	err := c.update(func(tx *keyspace.Tx) error {
		var err error
		if old, live, err = txString(tx, args[1], n.nowMillis()); err != nil || !live {
			return err
		}
		return n.deleteKey(tx, args[1])
	})
	n.replyRead(c, err, old, live)
}

// cmdGetEx is GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]. As in
// Redis, a missing key answers nil before the expiry argument is checked, and
// an absolute deadline already past deletes the key.
func cmdGetEx(n *Node, c *client, args [][]byte) {
	o, err := parseExtended(args[2:], false)
	if err != nil {
		c.writeErr(err)
		return
	}
	if o.expiry == nil && !o.persist {
		cmdGet(n, c, args[:2])
		return
	}
	var (
		old  record.Record
		live bool
	)
	err = c.update(func(tx *keyspace.Tx) error {
		now := n.nowMillis()
		var err error
		if old, live, err = txString(tx, args[1], now); err != nil || !live {
			return err
		}
		var rec record.Record
		switch {
		case o.expiry != nil:
			at, err := expireMillis(now, o.expiry, o.unit, o.absolute, "getex")
			if err != nil {
				return err
			}
			v, err := n.newVersion()
			if err != nil {
				return err
			}
			rec = record.Record{Expiry: record.Expiry{Version: v, At: at}}
			if o.absolute && at <= now {
				rec = tombstone(v)
			}
		case old.Expiry.At != 0: // PERSIST
			v, err := n.newVersion()
			if err != nil {
				return err
			}
			rec = record.Record{Expiry: record.Expiry{Version: v}}
		default:
			return nil
		}
		err = n.put(tx, args[1], rec)
		return err
	})
	n.replyRead(c, err, old, live)
}

// replyRead answers a command that reads a string value (GETSET, GETDEL,
// GETEX): the error, the value or nil, counted as a keyspace hit or miss as
// Redis counts its reads.
func (n *Node) replyRead(c *client, err error, old record.Record, live bool) {
	switch {
	case err != nil:
		c.writeErr(err)
	case live:
		c.counts.hits.Add(1)
		c.w.WriteBulk(old.StringData())
	default:
		c.counts.misses.Add(1)
		c.w.WriteNull()
	}
}

func cmdMGet(n *Node, c *client, args [][]byte) {
	vals := make([][]byte, len(args)-1)
	found := make([]bool, len(args)-1)
	now := n.nowMillis()
	for i, key := range args[1:] {
		rec, err := c.get(key)
		if err != nil {
			c.writeErr(err)
			return
		}
		// As in Redis, a key of another type reads as nil, not an error.
		if rec.Live(now) && rec.Kind() == record.KindString {
			vals[i], found[i] = rec.StringData(), true
			c.counts.hits.Add(1)
		} else {
			c.counts.misses.Add(1)
		}
	}
	c.w.WriteArray(len(vals))
	for i, v := range vals {
		if found[i] {
			c.w.WriteBulk(v)
		} else {
			c.w.WriteNull()
		}
	}
}

func cmdMSet(n *Node, c *client, args [][]byte)   { msetGeneric(n, c, args, false) }
func cmdMSetNX(n *Node, c *client, args [][]byte) { msetGeneric(n, c, args, true) }

// msetGeneric is MSET and MSETNX: every pair in one write-path step, so the
// keys change together. Each key gets its own version, consecutive ones from
// one clock read, so of a key given twice the last value wins, as in Redis.
func msetGeneric(n *Node, c *client, args [][]byte, nx bool) {
	if len(args)%2 == 0 {
		c.w.WriteError("ERR wrong number of arguments for '" + strings.ToLower(string(args[0])) + "' command")
		return
	}
	done := false
	err := c.update(func(tx *keyspace.Tx) error {
		done = false
		if c.tx == nil { // else the pipeline's or transaction's step prefetched them
			c.prefetchKeys(tx, [][][]byte{args})
		}
		if nx {
			now := n.nowMillis()
			for i := 1; i < len(args); i += 2 {
				if liveKey(tx, args[i], now) {
					return nil
				}
			}
		}
		v, err := n.newVersions((len(args) - 1) / 2)
		if err != nil {
			return err
		}
		for i := 1; i < len(args); i += 2 {
			if err := n.putStringAt(tx, args[i], args[i+1], 0, v); err != nil {
				return err
			}
			v.TS++
		}
		done = true
		return nil
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case nx:
		c.w.WriteInt(boolInt(done))
	default:
		c.w.WriteString("OK")
	}
}

func cmdAppend(n *Node, c *client, args [][]byte) {
	var size int
	err := c.update(func(tx *keyspace.Tx) error {
		cur, live, err := txString(tx, args[1], n.nowMillis())
		if err != nil {
			return err
		}
		var data []byte
		if live {
			if err := n.checkStringLength(int64(len(cur.StringData())), int64(len(args[2]))); err != nil {
				return err
			}
			data = append(bytes.Clone(cur.StringData()), args[2]...)
		} else {
			data = bytes.Clone(args[2])
		}
		size = len(data)
		return n.putValue(tx, args[1], data, live)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(size)
}

func cmdStrlen(n *Node, c *client, args [][]byte) {
	data, _, err := c.readString(args[1])
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(len(data))
}

// cmdGetRange is GETRANGE key start end with Redis's clamping of negative and
// out-of-range offsets.
func cmdGetRange(n *Node, c *client, args [][]byte) {
	start, ok1 := parseInt(args[2])
	end, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.w.WriteError(errNotInteger)
		return
	}
	data, _, err := c.readString(args[1])
	if err != nil {
		c.writeErr(err)
		return
	}
	size := int64(len(data))
	if start < 0 && end < 0 && start > end {
		c.w.WriteBulk(nil)
		return
	}
	if start < 0 {
		start += size
	}
	if end < 0 {
		end += size
	}
	start, end = max(start, 0), max(end, 0)
	if end >= size {
		end = size - 1
	}
	if start > end || size == 0 {
		c.w.WriteBulk(nil)
		return
	}
	c.w.WriteBulk(data[start : end+1])
}

func cmdSetRange(n *Node, c *client, args [][]byte) {
	offset, ok := parseInt(args[2])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	if offset < 0 {
		c.w.WriteError(errOffsetRange)
		return
	}
	val := args[3]
	var size int
	err := c.update(func(tx *keyspace.Tx) error {
		cur, live, err := txString(tx, args[1], n.nowMillis())
		if err != nil {
			return err
		}
		old := cur.StringData()
		if !live {
			old = nil
		}
		size = len(old)
		if len(val) == 0 {
			return nil // nothing to set: the length as it is, no key created
		}
		if err := n.checkStringLength(offset, int64(len(val))); err != nil {
			return err
		}
		data := make([]byte, max(int64(len(old)), offset+int64(len(val))))
		copy(data, old)
		copy(data[offset:], val)
		size = len(data)
		return n.putValue(tx, args[1], data, live)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(size)
}

func cmdIncr(n *Node, c *client, args [][]byte) { incrBy(n, c, args[1], 1) }
func cmdDecr(n *Node, c *client, args [][]byte) { incrBy(n, c, args[1], -1) }

func cmdIncrBy(n *Node, c *client, args [][]byte) {
	by, ok := parseInt(args[2])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	incrBy(n, c, args[1], by)
}

func cmdDecrBy(n *Node, c *client, args [][]byte) {
	by, ok := parseInt(args[2])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	if by == math.MinInt64 {
		c.w.WriteError("ERR decrement would overflow")
		return
	}
	incrBy(n, c, args[1], -by)
}

// incrBy is INCR, INCRBY, DECR and DECRBY: the key becomes a counter, whose
// increments made concurrently at different nodes add up. This node's
// increments are one count (record.Count) that only it writes; the string
// register stays the base they add to, so a concurrent SET elsewhere resets
// only the increments it observed.
func incrBy(n *Node, c *client, key []byte, by int64) {
	var result int64
	err := c.update(func(tx *keyspace.Tx) error {
		var done bool
		var err error
		if result, done, err = n.incrCounted(tx, key, by); done || err != nil {
			return err
		}
		if done, err = n.incrNew(tx, key, by); done || err != nil {
			result = by
			return err
		}
		w, err := n.beginTyped(tx, key, record.KindString, n.nowMillis())
		if err != nil {
			return err
		}
		result, err = w.incrInt(tx, nil, by)
		return err
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt64(result)
}

// incrCounted is incrBy's path for the common counter, a live string key
// that only this node's current identity increments, in its current run
// (record.CounterState): the state is read and replaced without a decode
// or a merge (keyspace.Tx.AddCount). done is false, and nothing written, for
// any other key and for an increment that would fail: the general path
// then takes it, and answers the error.
func (n *Node) incrCounted(tx *keyspace.Tx, key []byte, by int64) (result int64, done bool, err error) {
	cur, st, ok := tx.Counter(key)
	if !ok || st.Count.Node != n.counterID || st.Spent() ||
		cur.Value.Tombstone || cur.Value.Version.IsZero() || cur.Expired(n.nowMillis()) {
		return 0, false, nil
	}
	old, ok := st.Value(cur.Value.Data)
	if !ok || addOverflows(old, by) || addOverflows(st.Count.Total, by) {
		return 0, false, nil
	}
	v, err := n.newVersion()
	if err != nil {
		return 0, false, err
	}
	next := st
	next.KindVersion = v
	next.Count.Ver, next.Count.Total = v, st.Count.Total+by
	if _, ok := tx.AddCount(key, cur, st, next); !ok {
		return 0, false, nil
	}
	return old + by, true, nil
}

// incrNew is incrBy's path for a key never written (nor in this step):
// it applies newCounter's record, the delta the general path builds for
// such a key, without building the general path's op or running the merge
// (keyspace.Tx.NewCounter). done is false, and nothing written, for any
// other key.
func (n *Node) incrNew(tx *keyspace.Tx, key []byte, by int64) (done bool, err error) {
	if cur, _ := tx.Peek(key); cur.Written() {
		return false, nil
	}
	v, err := n.newVersion()
	if err != nil {
		return false, err
	}
	rec, st := newCounter(v, n.counterID, by)
	return tx.NewCounter(key, rec, st)
}

// newCounter is a new string counter written at v: a base of 0 with no
// deadline (rec, its registers), and counter identity id's count of by, a
// run started at v (st, its typed state).
func newCounter(v record.Version, id record.NodeID, by int64) (rec record.Record, st record.CounterState) {
	st = record.CounterState{KindVersion: v, Count: record.Count{Node: id, Start: v.TS, Ver: v, Total: by}}
	return record.Record{Value: record.Value{Version: v, Data: []byte("0")}, Expiry: record.Expiry{Version: v}}, st
}

// addOverflows reports whether a + b overflows an int64.
func addOverflows(a, b int64) bool {
	return (b < 0 && a < 0 && b < math.MinInt64-a) || (b > 0 && a > 0 && b > math.MaxInt64-a)
}

// cmdIncrByFloat is INCRBYFLOAT, computed as Redis computes it (package
// longdouble): the result is the value as this node shows it, plus the
// increment, in long double. The key is a counter (record/exact.go): this
// node's float count adds exactly what moved the value to the result, so
// the node shows the result, as Redis would, and increments made at once at
// other nodes add theirs.
func cmdIncrByFloat(n *Node, c *client, args [][]byte) {
	by, byOK := longdouble.Parse(args[2])
	var result string
	err := c.update(func(tx *keyspace.Tx) error {
		w, err := n.beginTyped(tx, args[1], record.KindString, n.nowMillis())
		if err != nil {
			return err
		}
		old := longdouble.New()
		if w.live {
			var ok bool
			if old, ok = longdouble.Parse(w.cur.StringData()); !ok {
				return replyErr(errNotFloat)
			}
		}
		if !byOK {
			return replyErr(errNotFloat)
		}
		if old.IsInf() || by.IsInf() {
			return replyErr(errFloatNaN)
		}
		sum := longdouble.New().Add(old, by)
		if longdouble.Overflows(sum) {
			return replyErr(errFloatNaN)
		}
		result = longdouble.Format(sum)
		return w.incrFloat(tx, nil, w.cur.CounterBase(), w.live, result)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteBulkString(result)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
