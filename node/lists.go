package node

import (
	"bytes"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// List commands. A list's elements sit at positions that order them
// (record/list.go): a push takes a position past the end it pushes to, an
// LINSERT one between the pivot and its neighbour, so concurrent pushes at
// two nodes both land, in one order everywhere. Pops, LREM, LTRIM and DEL
// remove the elements they observed: two nodes popping at once may pop the
// same element, and both clients get it (at least once, as Redis
// Enterprise's Active-Active lists). LSET writes a new value at the
// element's position; of two concurrent LSETs of one element the later
// shows, and an LSET a concurrent pop did not observe keeps the element.
//
// listPush, listPop and listMove are the steps the blocking commands run
// too: each is one write of a key under the open write-path step.

const errIndexOutOfRange = "ERR index out of range"

// listPush pushes values at key's head (LPUSH: each value in turn, so the
// last ends first) or tail, as one write; onlyExisting (LPUSHX, RPUSHX)
// pushes only onto a list the client sees. It returns the list's new length
// (0 when onlyExisting found none).
func (n *Node) listPush(tx *keyspace.Tx, key []byte, tail bool, values [][]byte, onlyExisting bool) (int, error) {
	w, err := n.beginTyped(tx, key, record.KindList, n.nowMillis())
	if err != nil {
		return 0, err
	}
	if !w.live && onlyExisting {
		return 0, nil
	}
	var view record.ListView
	if w.live {
		view = w.cur.Typed.ListView()
	}
	var lo, hi []byte
	run := values
	if tail {
		if view.Len() > 0 {
			lo = view.At(view.Len() - 1).Name
		}
	} else {
		if view.Len() > 0 {
			hi = view.At(0).Name
		}
		run = make([][]byte, len(values))
		for i, v := range values {
			run[len(values)-1-i] = v
		}
	}
	if _, err := w.op.PushListedRun(lo, hi, run); err != nil {
		return 0, err
	}
	return view.Len() + len(values), w.commit(tx)
}

// listPop removes up to count elements from key's head or tail, as this
// node sees them, in one write; popped lists them in pop order. found
// reports whether key holds a list the client sees (a count of 0 pops
// nothing from it).
func (n *Node) listPop(tx *keyspace.Tx, key []byte, tail bool, count int64) (popped [][]byte, found bool, err error) {
	w, err := n.beginTyped(tx, key, record.KindList, n.nowMillis())
	if err != nil || !w.live {
		return nil, false, err
	}
	if count <= 0 {
		return nil, true, nil
	}
	view := w.cur.Typed.ListView()
	k := int(min(count, int64(view.Len())))
	popped = make([][]byte, 0, k)
	take := func(e record.Elem) bool {
		popped = append(popped, e.Value)
		w.op.RemListed(e.Name)
		return len(popped) < k
	}
	if tail {
		view.Descend(view.Len()-1, take)
	} else {
		view.Ascend(0, take)
	}
	return popped, true, w.commit(tx)
}

// listMove pops one element from src's head or tail and pushes it onto
// dst's (LMOVE, RPOPLPUSH), in one step; ok is false when src holds no
// list. A dst of another kind is WRONGTYPE, checked only once src has an
// element, as Redis does.
func (n *Node) listMove(tx *keyspace.Tx, src, dst []byte, fromTail, toTail bool) (value []byte, ok bool, err error) {
	now := n.nowMillis()
	cur, err := tx.Get(src)
	if err != nil {
		return nil, false, err
	}
	if live, err := liveKind(cur, now, record.KindList); err != nil || !live {
		return nil, false, err
	}
	d, err := tx.Get(dst)
	if err != nil {
		return nil, false, err
	}
	if _, err := liveKind(d, now, record.KindList); err != nil {
		return nil, false, err
	}
	popped, _, err := n.listPop(tx, src, fromTail, 1)
	if err != nil || len(popped) == 0 {
		return nil, false, err
	}
	value = bytes.Clone(popped[0])
	if _, err := n.listPush(tx, dst, toTail, [][]byte{value}, false); err != nil {
		return nil, false, err
	}
	return value, true, nil
}

func cmdLPush(n *Node, c *client, args [][]byte)  { pushCmd(n, c, args, false, false) }
func cmdRPush(n *Node, c *client, args [][]byte)  { pushCmd(n, c, args, true, false) }
func cmdLPushX(n *Node, c *client, args [][]byte) { pushCmd(n, c, args, false, true) }
func cmdRPushX(n *Node, c *client, args [][]byte) { pushCmd(n, c, args, true, true) }

func pushCmd(n *Node, c *client, args [][]byte, tail, onlyExisting bool) {
	length := 0
	err := c.update(func(tx *keyspace.Tx) error {
		var err error
		length, err = n.listPush(tx, args[1], tail, args[2:], onlyExisting)
		return err
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(length)
}

func cmdLPop(n *Node, c *client, args [][]byte) { popCmd(n, c, args, false) }
func cmdRPop(n *Node, c *client, args [][]byte) { popCmd(n, c, args, true) }

// popCmd is LPOP and RPOP key [count].
func popCmd(n *Node, c *client, args [][]byte, tail bool) {
	if len(args) > 3 {
		c.w.WriteError("ERR wrong number of arguments for '" + string(bytes.ToLower(args[0])) + "' command")
		return
	}
	count, hasCount := int64(1), len(args) == 3
	if hasCount {
		var ok bool
		if count, ok = parseInt(args[2]); !ok || count < 0 {
			c.w.WriteError(errMustBePositive)
			return
		}
	}
	var popped [][]byte
	found := false
	err := c.update(func(tx *keyspace.Tx) error {
		var err error
		popped, found, err = n.listPop(tx, args[1], tail, count)
		return err
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case !found && hasCount:
		c.w.WriteRaw([]byte("*-1\r\n"))
	case !found:
		c.w.WriteNull()
	case hasCount:
		writeMembers(c, popped)
	default:
		c.w.WriteBulk(popped[0])
	}
}

func cmdLLen(n *Node, c *client, args [][]byte) {
	l, err := c.readKind(args[1], record.KindList)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(l.ListLen())
}

// listRange is the indexes start..end (inclusive, negative from the end)
// of a list of length size as Redis clamps them; empty is true when the
// range holds nothing.
func listRange(start, end int64, size int) (from, to int, empty bool) {
	l := int64(size)
	if start < 0 {
		start += l
	}
	if end < 0 {
		end += l
	}
	start = max(start, 0)
	if start > end || start >= l {
		return 0, 0, true
	}
	end = min(end, l-1)
	return int(start), int(end), false
}

func cmdLRange(n *Node, c *client, args [][]byte) {
	start, ok1 := parseInt(args[2])
	end, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.w.WriteError(errNotInteger)
		return
	}
	l, err := c.readKind(args[1], record.KindList)
	if err != nil {
		c.writeErr(err)
		return
	}
	view := l.ListView()
	from, to, empty := listRange(start, end, view.Len())
	if empty {
		c.w.WriteArray(0)
		return
	}
	c.w.WriteArray(to - from + 1)
	i := from
	view.Ascend(from, func(e record.Elem) bool {
		c.w.WriteBulk(e.Value)
		i++
		return i <= to
	})
}

// listIndex is index (negative from the end) in a list of length size, if
// it is inside.
func listIndex(index int64, size int) (int, bool) {
	if index < 0 {
		index += int64(size)
	}
	if index < 0 || index >= int64(size) {
		return 0, false
	}
	return int(index), true
}

func cmdLIndex(n *Node, c *client, args [][]byte) {
	l, err := c.readKind(args[1], record.KindList)
	if err != nil {
		c.writeErr(err)
		return
	}
	if l == nil {
		c.w.WriteNull()
		return
	}
	index, ok := parseInt(args[2])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	view := l.ListView()
	i, ok := listIndex(index, view.Len())
	if !ok {
		c.w.WriteNull()
		return
	}
	c.w.WriteBulk(view.At(i).Value)
}

func cmdLSet(n *Node, c *client, args [][]byte) {
	err := c.update(func(tx *keyspace.Tx) error {
		w, err := n.beginTyped(tx, args[1], record.KindList, n.nowMillis())
		if err != nil {
			return err
		}
		if !w.live {
			return replyErr(errNoSuchKey)
		}
		index, ok := parseInt(args[2])
		if !ok {
			return replyErr(errNotInteger)
		}
		view := w.cur.Typed.ListView()
		i, ok := listIndex(index, view.Len())
		if !ok {
			return replyErr(errIndexOutOfRange)
		}
		if err := w.op.SetListed(view.At(i).Name, args[3]); err != nil {
			return err
		}
		return w.commit(tx)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteString("OK")
}

// cmdLInsert is LINSERT key BEFORE|AFTER pivot element: the element takes a
// position between the first pivot (from the head) and its neighbour.
func cmdLInsert(n *Node, c *client, args [][]byte) {
	var after bool
	switch {
	case equalFold(args[2], "after"):
		after = true
	case equalFold(args[2], "before"):
	default:
		c.w.WriteError(errSyntax)
		return
	}
	length := 0
	err := c.update(func(tx *keyspace.Tx) error {
		length = 0
		w, err := n.beginTyped(tx, args[1], record.KindList, n.nowMillis())
		if err != nil || !w.live {
			return err
		}
		view := w.cur.Typed.ListView()
		pivot := -1
		i := 0
		view.Ascend(0, func(e record.Elem) bool {
			if bytes.Equal(e.Value, args[3]) {
				pivot = i
				return false
			}
			i++
			return true
		})
		if pivot < 0 {
			length = -1
			return nil
		}
		var lo, hi []byte
		if after {
			lo = view.At(pivot).Name
			if pivot+1 < view.Len() {
				hi = view.At(pivot + 1).Name
			}
		} else {
			hi = view.At(pivot).Name
			if pivot > 0 {
				lo = view.At(pivot - 1).Name
			}
		}
		if _, err := w.op.PushListed(lo, hi, args[4]); err != nil {
			return err
		}
		length = view.Len() + 1
		return w.commit(tx)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(length)
}

// cmdLRem is LREM key count element: removes the first count occurrences
// (from the tail if count is negative, all if 0) that this node sees.
func cmdLRem(n *Node, c *client, args [][]byte) {
	count, ok := parseInt(args[2])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	removed := 0
	err := c.update(func(tx *keyspace.Tx) error {
		removed = 0
		w, err := n.beginTyped(tx, args[1], record.KindList, n.nowMillis())
		if err != nil || !w.live {
			return err
		}
		view := w.cur.Typed.ListView()
		limit := count
		if limit < 0 {
			limit = -limit // -MinInt64 stays negative: no limit, as Redis's long wraps
		}
		take := func(e record.Elem) bool {
			if bytes.Equal(e.Value, args[3]) {
				w.op.RemListed(e.Name)
				removed++
			}
			return limit <= 0 || int64(removed) < limit
		}
		if count < 0 {
			view.Descend(view.Len()-1, take)
		} else {
			view.Ascend(0, take)
		}
		if removed == 0 {
			return nil
		}
		return w.commit(tx)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(removed)
}

// cmdLTrim is LTRIM key start stop: removes the elements outside the range
// that this node sees.
func cmdLTrim(n *Node, c *client, args [][]byte) {
	start, ok1 := parseInt(args[2])
	end, ok2 := parseInt(args[3])
	if !ok1 || !ok2 {
		c.w.WriteError(errNotInteger)
		return
	}
	err := c.update(func(tx *keyspace.Tx) error {
		w, err := n.beginTyped(tx, args[1], record.KindList, n.nowMillis())
		if err != nil || !w.live {
			return err
		}
		view := w.cur.Typed.ListView()
		from, to, empty := listRange(start, end, view.Len())
		if empty {
			from, to = view.Len(), view.Len()-1
		}
		if from == 0 && to == view.Len()-1 {
			return nil
		}
		i := 0
		view.Ascend(0, func(e record.Elem) bool {
			if i < from || i > to {
				w.op.RemListed(e.Name)
			}
			i++
			return true
		})
		return w.commit(tx)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteString("OK")
}

// cmdLPos is LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].
func cmdLPos(n *Node, c *client, args [][]byte) {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(args); j++ {
		more := j+1 < len(args)
		var ok bool
		switch {
		case equalFold(args[j], "rank") && more:
			j++
			if rank, ok = parseInt(args[j]); !ok {
				c.w.WriteError(errNotInteger)
				return
			}
			if rank == 0 {
				c.w.WriteError("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
				return
			}
		case equalFold(args[j], "count") && more:
			j++
			if count, ok = parseInt(args[j]); !ok || count < 0 {
				c.w.WriteError("ERR COUNT can't be negative")
				return
			}
		case equalFold(args[j], "maxlen") && more:
			j++
			if maxlen, ok = parseInt(args[j]); !ok || maxlen < 0 {
				c.w.WriteError("ERR MAXLEN can't be negative")
				return
			}
		default:
			c.w.WriteError(errSyntax)
			return
		}
	}
	fromTail := rank < 0
	if fromTail {
		rank = -rank // -2^63 stays negative, so every match counts, as in Redis
	}
	l, err := c.readKind(args[1], record.KindList)
	if err != nil {
		c.writeErr(err)
		return
	}
	if l == nil {
		if count != -1 {
			c.w.WriteArray(0)
		} else {
			c.w.WriteNull()
		}
		return
	}
	view := l.ListView()
	size := view.Len()
	var found []int
	matches, scanned := int64(0), int64(0)
	visit := func(e record.Elem) bool {
		if maxlen != 0 && scanned >= maxlen {
			return false
		}
		idx := int(scanned)
		if fromTail {
			idx = size - 1 - int(scanned)
		}
		scanned++
		if !bytes.Equal(e.Value, args[2]) {
			return true
		}
		matches++
		if matches < rank {
			return true
		}
		found = append(found, idx)
		if count == -1 {
			return false
		}
		// As Redis's longs, the sum wraps for a rank of -2^63.
		return count == 0 || matches-rank+1 < count
	}
	if fromTail {
		view.Descend(size-1, visit)
	} else {
		view.Ascend(0, visit)
	}
	if count != -1 {
		c.w.WriteArray(len(found))
		for _, i := range found {
			c.w.WriteInt(i)
		}
		return
	}
	if len(found) == 0 {
		c.w.WriteNull()
		return
	}
	c.w.WriteInt(found[0])
}

// parseWhere reads LEFT or RIGHT: whether it is RIGHT (the tail).
func parseWhere(b []byte) (tail, ok bool) {
	switch {
	case equalFold(b, "left"):
		return false, true
	case equalFold(b, "right"):
		return true, true
	}
	return false, false
}

func cmdLMove(n *Node, c *client, args [][]byte) {
	fromTail, ok1 := parseWhere(args[3])
	if !ok1 {
		c.w.WriteError(errSyntax)
		return
	}
	toTail, ok2 := parseWhere(args[4])
	if !ok2 {
		c.w.WriteError(errSyntax)
		return
	}
	moveCmd(n, c, args[1], args[2], fromTail, toTail)
}

func cmdRPopLPush(n *Node, c *client, args [][]byte) { moveCmd(n, c, args[1], args[2], true, false) }

func moveCmd(n *Node, c *client, src, dst []byte, fromTail, toTail bool) {
	var value []byte
	moved := false
	err := c.update(func(tx *keyspace.Tx) error {
		var err error
		value, moved, err = n.listMove(tx, src, dst, fromTail, toTail)
		return err
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case !moved:
		c.w.WriteNull()
	default:
		c.w.WriteBulk(value)
	}
}

// cmdLMPop is LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: pops
// from the first key that holds a list.
func cmdLMPop(n *Node, c *client, args [][]byte) {
	keys, tail, count, errMsg := parseMPop(args, 1)
	if errMsg != "" {
		c.w.WriteError(errMsg)
		return
	}
	var popped [][]byte
	var from []byte
	err := c.update(func(tx *keyspace.Tx) error {
		popped, from = nil, nil
		for _, k := range keys {
			p, found, err := n.listPop(tx, k, tail, count)
			if err != nil {
				return err
			}
			if found {
				popped, from = p, k
				return nil
			}
		}
		return nil
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case from == nil:
		c.w.WriteRaw([]byte("*-1\r\n")) // a null array: no key held a list
	default:
		c.w.WriteArray(2)
		c.w.WriteBulk(from)
		writeMembers(c, popped)
	}
}

// parseMPop reads LMPOP's arguments from numkeys at args[at] on (BLMPOP's
// at 2): the keys, the end, the count, or Redis's error.
func parseMPop(args [][]byte, at int) (keys [][]byte, tail bool, count int64, errMsg string) {
	numkeys, ok := parseInt(args[at])
	if !ok || numkeys < 1 {
		return nil, false, 0, "ERR numkeys should be greater than 0"
	}
	if numkeys >= int64(len(args)) { // before the sum below can overflow
		return nil, false, 0, errSyntax
	}
	whereIdx := at + 1 + int(numkeys)
	if whereIdx >= len(args) {
		return nil, false, 0, errSyntax
	}
	if tail, ok = parseWhere(args[whereIdx]); !ok {
		return nil, false, 0, errSyntax
	}
	count = -1
	for j := whereIdx + 1; j < len(args); j++ {
		if count == -1 && equalFold(args[j], "count") && j+1 < len(args) {
			j++
			if count, ok = parseInt(args[j]); !ok || count < 1 {
				return nil, false, 0, "ERR count should be greater than 0"
			}
			continue
		}
		return nil, false, 0, errSyntax
	}
	if count == -1 {
		count = 1
	}
	return args[at+1 : whereIdx], tail, count, ""
}
