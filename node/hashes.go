package node

import (
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/longdouble"
	"github.com/redmesh/redmesh/record"
)

// Hash commands. Fields merge one by one across nodes (record.Typed): a
// field written at one node and another field at another both stay; two
// writes of one field keep the later; HDEL and DEL remove only what they
// observed; HINCRBY's increments at different nodes add up. HINCRBYFLOAT
// writes the sum it computed, so concurrent float increments of one field
// keep the later one.

const (
	errHashNotInteger = "ERR hash value is not an integer"
	errHashNotFloat   = "ERR hash value is not a float"
)

func cmdHSet(n *Node, c *client, args [][]byte)  { hset(n, c, args, false) }
func cmdHMSet(n *Node, c *client, args [][]byte) { hset(n, c, args, true) }

// hset is HSET (answers how many fields were new) and HMSET (answers OK).
func hset(n *Node, c *client, args [][]byte, ok bool) {
	if len(args)%2 != 0 {
		c.w.WriteError("ERR wrong number of arguments for '" + strings.ToLower(string(args[0])) + "' command")
		return
	}
	added := 0
	err := c.update(func(tx *keyspace.Tx) error {
		added = 0
		w, err := n.beginTyped(tx, args[1], record.KindHash, n.nowMillis())
		if err != nil {
			return err
		}
		for i := 2; i < len(args); i += 2 {
			if _, had := w.op.Field(args[i]); (!had || !w.live) && own(w.t.Fields, args[i]) < 0 {
				added++
			}
			if err := w.setField(args[i], args[i+1]); err != nil {
				return err
			}
		}
		return w.commit(tx)
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case ok:
		c.w.WriteString("OK")
	default:
		c.w.WriteInt(added)
	}
}

func cmdHSetNX(n *Node, c *client, args [][]byte) {
	done := false
	err := c.update(func(tx *keyspace.Tx) error {
		done = false
		w, err := n.beginTyped(tx, args[1], record.KindHash, n.nowMillis())
		if err != nil {
			return err
		}
		if _, had := w.op.Field(args[2]); had && w.live {
			return nil
		}
		if err := w.setField(args[2], args[3]); err != nil {
			return err
		}
		done = true
		return w.commit(tx)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(boolInt(done))
}

func cmdHGet(n *Node, c *client, args [][]byte) {
	h, err := c.readKind(args[1], record.KindHash)
	if err != nil {
		c.writeErr(err)
		return
	}
	if v, ok := h.FieldValue(args[2]); ok {
		c.w.WriteBulk(v)
		return
	}
	c.w.WriteNull()
}

func cmdHMGet(n *Node, c *client, args [][]byte) {
	h, err := c.readKind(args[1], record.KindHash)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteArray(len(args) - 2)
	for _, f := range args[2:] {
		if v, ok := h.FieldValue(f); ok {
			c.w.WriteBulk(v)
		} else {
			c.w.WriteNull()
		}
	}
}

func cmdHDel(n *Node, c *client, args [][]byte) {
	deleted := 0
	err := c.update(func(tx *keyspace.Tx) error {
		deleted = 0
		w, err := n.beginTyped(tx, args[1], record.KindHash, n.nowMillis())
		if err != nil || !w.live {
			return err
		}
		done := make(map[string]bool, len(args)-2)
		for _, f := range args[2:] {
			if _, had := w.cur.Typed.Field(f); had && !done[string(f)] {
				done[string(f)] = true
				deleted++
				w.delField(f)
			}
		}
		if deleted == 0 {
			return nil
		}
		return w.commit(tx)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(deleted)
}

func cmdHLen(n *Node, c *client, args [][]byte) {
	h, err := c.readKind(args[1], record.KindHash)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(h.Len())
}

func cmdHStrLen(n *Node, c *client, args [][]byte) {
	h, err := c.readKind(args[1], record.KindHash)
	if err != nil {
		c.writeErr(err)
		return
	}
	v, _ := h.FieldValue(args[2])
	c.w.WriteInt(len(v))
}

func cmdHExists(n *Node, c *client, args [][]byte) {
	h, err := c.readKind(args[1], record.KindHash)
	if err != nil {
		c.writeErr(err)
		return
	}
	_, ok := h.Field(args[2])
	c.w.WriteInt(boolInt(ok))
}

func cmdHKeys(n *Node, c *client, args [][]byte)   { hgetall(n, c, args, true, false) }
func cmdHVals(n *Node, c *client, args [][]byte)   { hgetall(n, c, args, false, true) }
func cmdHGetAll(n *Node, c *client, args [][]byte) { hgetall(n, c, args, true, true) }

// hgetall is HKEYS, HVALS and HGETALL: fields in name order.
func hgetall(n *Node, c *client, args [][]byte, keys, vals bool) {
	h, err := c.readKind(args[1], record.KindHash)
	if err != nil {
		c.writeErr(err)
		return
	}
	per := boolInt(keys) + boolInt(vals)
	c.w.WriteArray(h.Len() * per)
	h.EachField(func(name, value []byte) bool {
		if keys {
			c.w.WriteBulk(name)
		}
		if vals {
			c.w.WriteBulk(value)
		}
		return true
	})
}

// cmdHIncrBy is HINCRBY: the field becomes a counter whose increments at
// different nodes add up (see incrBy).
func cmdHIncrBy(n *Node, c *client, args [][]byte) {
	by, ok := parseInt(args[3])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	var result int64
	err := c.update(func(tx *keyspace.Tx) error {
		w, err := n.beginTyped(tx, args[1], record.KindHash, n.nowMillis())
		if err != nil {
			return err
		}
		result, err = w.incrInt(tx, args[2], by)
		return err
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt64(result)
}

// cmdHIncrByFloat is HINCRBYFLOAT, computed as INCRBYFLOAT is (long
// double): the field is a counter whose float increments made at once at
// different nodes add up (see cmdIncrByFloat).
func cmdHIncrByFloat(n *Node, c *client, args [][]byte) {
	by, ok := longdouble.Parse(args[3])
	if !ok {
		c.w.WriteError(errNotFloat)
		return
	}
	if by.IsInf() {
		c.w.WriteError("ERR value is NaN or Infinity")
		return
	}
	var result string
	err := c.update(func(tx *keyspace.Tx) error {
		w, err := n.beginTyped(tx, args[1], record.KindHash, n.nowMillis())
		if err != nil {
			return err
		}
		old := longdouble.New()
		v, had := w.cur.Typed.FieldValue(args[2])
		had = had && w.live
		if had {
			if old, ok = longdouble.Parse(v); !ok {
				return replyErr(errHashNotFloat)
			}
		}
		sum := longdouble.New().Add(old, by)
		if longdouble.Overflows(sum) {
			return replyErr(errFloatNaN)
		}
		result = longdouble.Format(sum)
		// A field an HDEL left with increments it did not observe (no
		// element) gets an element: its base 0, the increments reset and
		// the result counted from there, so that the field stays when its
		// counts come to add nothing, as in Redis.
		e, _ := w.cur.Typed.Field(args[2])
		return w.incrFloat(tx, args[2], e.Value, had && !e.Dot.IsZero(), result)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteBulkString(result)
}

// cmdHRandField is HRANDFIELD key [count [WITHVALUES]], with Redis's count
// rules: positive, distinct fields up to count; negative, that many picks
// that may repeat.
func cmdHRandField(n *Node, c *client, args [][]byte) {
	if len(args) > 4 || len(args) == 4 && !equalFold(args[3], "withvalues") {
		c.w.WriteError(errSyntax)
		return
	}
	withValues := len(args) == 4
	var count int64
	if len(args) >= 3 {
		var ok bool
		if count, ok = parseInt(args[2]); !ok {
			c.w.WriteError(errNotInteger)
			return
		}
		if count == -1<<63 {
			c.w.WriteError("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
			return
		}
		if withValues && count < -(1<<63-1)/2 {
			c.w.WriteError("ERR value is out of range")
			return
		}
	}
	h, err := c.readKind(args[1], record.KindHash)
	if err != nil {
		c.writeErr(err)
		return
	}
	type field struct{ name, value []byte }
	var all []field
	h.EachField(func(name, value []byte) bool {
		all = append(all, field{name, value})
		return true
	})
	if len(args) == 2 {
		if len(all) == 0 {
			c.w.WriteNull()
			return
		}
		c.w.WriteBulk(all[rand.IntN(len(all))].name)
		return
	}
	per := int64(1 + boolInt(withValues))
	if count < 0 && len(all) > 0 {
		c.w.WriteArray(int(-count * per))
		for i := range -count {
			f := all[rand.IntN(len(all))]
			c.w.WriteBulk(f.name)
			if withValues {
				c.w.WriteBulk(f.value)
			}
			if i%1024 == 0 {
				c.w.spill()
			}
		}
		return
	}
	picks := randomPicks(len(all), count)
	c.w.WriteArray(len(picks) * int(per))
	for _, i := range picks {
		c.w.WriteBulk(all[i].name)
		if withValues {
			c.w.WriteBulk(all[i].value)
		}
	}
}

// randomPicks chooses indexes of a collection of size elements as
// HRANDFIELD, SRANDMEMBER and ZRANDMEMBER do with count > 0: distinct, at
// most size. (A negative count asks for -count picks that may repeat; the
// commands write those as they draw them.)
func randomPicks(size int, count int64) []int {
	if size == 0 || count <= 0 {
		return nil
	}
	perm := rand.Perm(size)
	if count < int64(size) {
		perm = perm[:count]
	}
	return perm
}

func cmdHScan(n *Node, c *client, args [][]byte) {
	cursor, err := strconv.ParseUint(string(args[2]), 10, 64)
	if err != nil {
		c.w.WriteError("ERR invalid cursor")
		return
	}
	o, err := parseScanOptions(args[3:], false)
	if err != nil {
		c.writeErr(err)
		return
	}
	h, err := c.readKind(args[1], record.KindHash)
	if err != nil {
		c.writeErr(err)
		return
	}
	var names, values [][]byte
	h.EachField(func(name, value []byte) bool {
		names, values = append(names, name), append(values, value)
		return true
	})
	next, picked := scanElements(names, cursor, o)
	c.w.WriteArray(2)
	c.w.WriteBulkString(strconv.FormatUint(next, 10))
	c.w.WriteArray(2 * len(picked))
	for _, i := range picked {
		c.w.WriteBulk(names[i])
		c.w.WriteBulk(values[i])
	}
}
