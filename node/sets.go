package node

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// Set commands. Members merge as an observed-remove set (record.Typed): an
// SREM, SPOP or DEL removes the members it observed, so a member added
// concurrently at another node stays (adds win). SPOP at two nodes may pop
// the same member: each node's SPOP removes what it saw, and both clients get
// it (at least once, not exactly once).

const errMustBePositive = "ERR value is out of range, must be positive"

func cmdSAdd(n *Node, c *client, args [][]byte) {
	added := 0
	err := c.update(func(tx *keyspace.Tx) error {
		added = 0
		w, err := n.beginTyped(tx, args[1], record.KindSet, n.nowMillis())
		if err != nil {
			return err
		}
		// A member the key holds is added again, with a fresh dot (see
		// record.TypedOp.AddMember), though the reply counts only new ones.
		for _, m := range args[2:] {
			if own(w.t.Members, m) >= 0 {
				continue
			}
			if !w.live || !w.op.HasMember(m) {
				added++
			}
			if err := w.addMember(m); err != nil {
				return err
			}
		}
		if added == 0 && w.live {
			return w.commitUnseen(tx)
		}
		return w.commit(tx)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(added)
}

func cmdSRem(n *Node, c *client, args [][]byte) {
	removed := 0
	err := c.update(func(tx *keyspace.Tx) error {
		removed = 0
		w, err := n.beginTyped(tx, args[1], record.KindSet, n.nowMillis())
		if err != nil || !w.live {
			return err
		}
		done := make(map[string]bool, len(args)-2)
		for _, m := range args[2:] {
			if w.cur.Typed.HasMember(m) && !done[string(m)] {
				done[string(m)] = true
				removed++
				w.remMember(m)
			}
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

// members lists a set's members, in order.
func members(s *record.Typed) [][]byte {
	var out [][]byte
	s.EachMember(func(m []byte) bool {
		out = append(out, m)
		return true
	})
	return out
}

func writeMembers(c *client, ms [][]byte) {
	c.w.WriteArray(len(ms))
	for _, m := range ms {
		c.w.WriteBulk(m)
	}
}

func cmdSMembers(n *Node, c *client, args [][]byte) {
	s, err := c.readKind(args[1], record.KindSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	writeMembers(c, members(s))
}

func cmdSIsMember(n *Node, c *client, args [][]byte) {
	s, err := c.readKind(args[1], record.KindSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(boolInt(s.HasMember(args[2])))
}

func cmdSMIsMember(n *Node, c *client, args [][]byte) {
	s, err := c.readKind(args[1], record.KindSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteArray(len(args) - 2)
	for _, m := range args[2:] {
		c.w.WriteInt(boolInt(s.HasMember(m)))
	}
}

func cmdSCard(n *Node, c *client, args [][]byte) {
	s, err := c.readKind(args[1], record.KindSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(s.Len())
}

// cmdSPop is SPOP key [count]: removes random members this node observed.
func cmdSPop(n *Node, c *client, args [][]byte) {
	if len(args) > 3 {
		c.w.WriteError(errSyntax)
		return
	}
	count := int64(1)
	if len(args) == 3 {
		var ok bool
		if count, ok = parseInt(args[2]); !ok || count < 0 {
			c.w.WriteError(errMustBePositive)
			return
		}
	}
	var popped [][]byte
	err := c.update(func(tx *keyspace.Tx) error {
		popped = nil
		w, err := n.beginTyped(tx, args[1], record.KindSet, n.nowMillis())
		if err != nil || !w.live || count == 0 {
			return err
		}
		for _, m := range randomMembers(w.cur.Typed, count) {
			popped = append(popped, m)
			w.remMember(m)
		}
		return w.commit(tx)
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case len(args) == 3:
		writeMembers(c, popped)
	case len(popped) == 0:
		c.w.WriteNull()
	default:
		c.w.WriteBulk(popped[0])
	}
}

func cmdSRandMember(n *Node, c *client, args [][]byte) {
	if len(args) > 3 {
		c.w.WriteError(errSyntax)
		return
	}
	var count int64
	if len(args) == 3 {
		var ok bool
		if count, ok = parseInt(args[2]); !ok {
			c.w.WriteError(errNotInteger)
			return
		}
		if count == -1<<63 {
			c.w.WriteError("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
			return
		}
	}
	s, err := c.readKind(args[1], record.KindSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	if len(args) == 2 {
		if s.MemberCount() == 0 {
			c.w.WriteNull()
			return
		}
		c.w.WriteBulk(s.MemberAt(rand.IntN(s.MemberCount())))
		return
	}
	if count < 0 && s.MemberCount() > 0 {
		c.w.WriteArray(int(-count))
		for i := range -count {
			c.w.WriteBulk(s.MemberAt(rand.IntN(s.MemberCount())))
			if i%1024 == 0 {
				c.w.spill()
			}
		}
		return
	}
	writeMembers(c, randomMembers(s, count))
}

// randomMembers picks distinct members as SRANDMEMBER and SPOP do with a
// positive count (see randomPicks): a few from a large set by position, in
// O(log n) each, without listing the set.
func randomMembers(s *record.Typed, count int64) [][]byte {
	size := s.Len()
	if size == 0 || count == 0 {
		return nil
	}
	if count > 0 && count <= int64(size)/4 {
		seen := make(map[string]bool, count)
		var out [][]byte
		for int64(len(out)) < count {
			m := s.MemberAt(rand.IntN(s.MemberCount()))
			if !seen[string(m)] {
				seen[string(m)] = true
				out = append(out, m)
			}
		}
		return out
	}
	all := members(s)
	picks := randomPicks(len(all), count)
	out := make([][]byte, len(picks))
	for i, p := range picks {
		out[i] = all[p]
	}
	return out
}

// cmdSMove is SMOVE source destination member: a remove of what this node
// observed at the source and an add at the destination, in one step.
func cmdSMove(n *Node, c *client, args [][]byte) {
	moved := false
	err := c.update(func(tx *keyspace.Tx) error {
		moved = false
		now := n.nowMillis()
		src, err := n.beginTyped(tx, args[1], record.KindSet, now)
		if err != nil {
			return err
		}
		dst, err := tx.Get(args[2])
		if err != nil {
			return err
		}
		if _, err := liveKind(dst, now, record.KindSet); err != nil {
			return err
		}
		if !src.live || !src.cur.Typed.HasMember(args[3]) {
			return nil
		}
		moved = true
		if string(args[1]) == string(args[2]) {
			return nil
		}
		src.remMember(args[3])
		if err := src.commit(tx); err != nil {
			return err
		}
		w, err := n.beginTyped(tx, args[2], record.KindSet, now)
		if err != nil {
			return err
		}
		if err := w.addMember(args[3]); err != nil {
			return err
		}
		if w.live && w.cur.Typed.HasMember(args[3]) {
			return w.commitUnseen(tx)
		}
		return w.commit(tx)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(boolInt(moved))
}

// setOp is a set algebra command: intersection, union or difference.
type setOp int

const (
	opInter setOp = iota
	opUnion
	opDiff
)

// readSets reads keys as sets: nil for a key the client does not see,
// WRONGTYPE if any holds another kind (checked for every key, as Redis does).
func readSets(get func([]byte) (record.Record, error), keys [][]byte, now int64) ([]*record.Typed, error) {
	sets := make([]*record.Typed, len(keys))
	for i, k := range keys {
		rec, err := get(k)
		if err != nil {
			return nil, err
		}
		live, err := liveKind(rec, now, record.KindSet)
		if err != nil {
			return nil, err
		}
		if live {
			sets[i] = rec.Typed
		}
	}
	return sets, nil
}

// combine computes op over sets, in member order, stopping once limit
// members are found (0: no limit).
func combine(op setOp, sets []*record.Typed, limit int) [][]byte {
	var out [][]byte
	switch op {
	case opInter:
		for _, s := range sets {
			if s == nil {
				return nil
			}
		}
		sets[0].EachMember(func(m []byte) bool {
			for _, s := range sets[1:] {
				if !s.HasMember(m) {
					return true
				}
			}
			out = append(out, m)
			return limit == 0 || len(out) < limit
		})
	case opUnion:
		seen := make(map[string]bool)
		for _, s := range sets {
			s.EachMember(func(m []byte) bool {
				if !seen[string(m)] {
					seen[string(m)] = true
					out = append(out, m)
				}
				return true
			})
		}
		slices.SortFunc(out, bytes.Compare)
	case opDiff:
		sets[0].EachMember(func(m []byte) bool {
			for _, s := range sets[1:] {
				if s.HasMember(m) {
					return true
				}
			}
			out = append(out, m)
			return true
		})
	}
	return out
}

func cmdSInter(n *Node, c *client, args [][]byte) { setRead(n, c, args[1:], opInter) }
func cmdSUnion(n *Node, c *client, args [][]byte) { setRead(n, c, args[1:], opUnion) }
func cmdSDiff(n *Node, c *client, args [][]byte)  { setRead(n, c, args[1:], opDiff) }

func setRead(n *Node, c *client, keys [][]byte, op setOp) {
	sets, err := readSets(c.get, keys, n.nowMillis())
	if err != nil {
		c.writeErr(err)
		return
	}
	writeMembers(c, combine(op, sets, 0))
}

func cmdSInterStore(n *Node, c *client, args [][]byte) { setStore(n, c, args, opInter) }
func cmdSUnionStore(n *Node, c *client, args [][]byte) { setStore(n, c, args, opUnion) }
func cmdSDiffStore(n *Node, c *client, args [][]byte)  { setStore(n, c, args, opDiff) }

// setStore is SINTERSTORE, SUNIONSTORE and SDIFFSTORE: the destination
// becomes the result, whatever it held; an empty result deletes it.
func setStore(n *Node, c *client, args [][]byte, op setOp) {
	size := 0
	err := c.update(func(tx *keyspace.Tx) error {
		now := n.nowMillis()
		sets, err := readSets(tx.Get, args[2:], now)
		if err != nil {
			return err
		}
		result := combine(op, sets, 0)
		size = len(result)
		return n.storeSet(tx, args[1], result, now)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(size)
}

// storeSet makes key the set of ms, replacing what it held; no members
// deletes it.
func (n *Node) storeSet(tx *keyspace.Tx, key []byte, ms [][]byte, now int64) error {
	if len(ms) == 0 {
		if !liveKey(tx, key, now) {
			return nil
		}
		return n.deleteKey(tx, key)
	}
	w, err := n.replaceTyped(tx, key, record.KindSet)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := w.addMember(m); err != nil {
			return err
		}
	}
	return w.commit(tx)
}

// cmdSInterCard is SINTERCARD numkeys key [key ...] [LIMIT limit].
func cmdSInterCard(n *Node, c *client, args [][]byte) {
	numkeys, ok := parseInt(args[1])
	if !ok || numkeys <= 0 {
		c.w.WriteError("ERR numkeys should be greater than 0")
		return
	}
	if numkeys > int64(len(args)-2) {
		c.w.WriteError("ERR Number of keys can't be greater than number of args")
		return
	}
	keys := args[2 : 2+numkeys]
	limit := int64(0)
	for i := 2 + int(numkeys); i < len(args); i += 2 {
		if !equalFold(args[i], "limit") || i+1 >= len(args) {
			c.w.WriteError(errSyntax)
			return
		}
		if limit, ok = parseInt(args[i+1]); !ok {
			c.w.WriteError(errNotInteger)
			return
		}
		if limit < 0 {
			c.w.WriteError("ERR LIMIT can't be negative")
			return
		}
	}
	sets, err := readSets(c.get, keys, n.nowMillis())
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(len(combine(opInter, sets, int(limit))))
}

func cmdSScan(n *Node, c *client, args [][]byte) {
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
	s, err := c.readKind(args[1], record.KindSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	all := members(s)
	next, picked := scanElements(all, cursor, o)
	c.w.WriteArray(2)
	c.w.WriteBulkString(strconv.FormatUint(next, 10))
	c.w.WriteArray(len(picked))
	for _, i := range picked {
		c.w.WriteBulk(all[i])
	}
}
