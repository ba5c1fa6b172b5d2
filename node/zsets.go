package node

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// Sorted-set commands. Members merge as a set's do (add wins over a
// concurrent ZREM, ZPOP or DEL, which remove what they observed); a
// member's score is the later of concurrent ZADDs plus every node's ZINCRBY
// increments, so concurrent increments add up and a ZREM concurrent with a
// ZINCRBY leaves the increment it did not observe (record/zset.go). ZPOPMIN
// and ZPOPMAX at two nodes may pop the same member (at least once).

// zsetMaxListpack are Redis 7.0's defaults for a listpack-encoded sorted set
// (zset-max-listpack-entries, zset-max-listpack-value).
const (
	zsetMaxListpackEntries = 128
	zsetMaxListpackValue   = 64
)

// zaddFlags are ZADD's options.
type zaddFlags struct{ nx, xx, gt, lt, ch, incr bool }

func cmdZAdd(n *Node, c *client, args [][]byte) {
	var f zaddFlags
	i := 2
	for ; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "nx":
			f.nx = true
		case "xx":
			f.xx = true
		case "gt":
			f.gt = true
		case "lt":
			f.lt = true
		case "ch":
			f.ch = true
		case "incr":
			f.incr = true
		default:
			goto pairs
		}
	}
pairs:
	rest := args[i:]
	switch {
	case len(rest) == 0 || len(rest)%2 != 0:
		c.w.WriteError(errSyntax)
		return
	case f.nx && f.xx:
		c.w.WriteError("ERR XX and NX options at the same time are not compatible")
		return
	case f.gt && f.nx || f.lt && f.nx || f.gt && f.lt:
		c.w.WriteError("ERR GT, LT, and/or NX options at the same time are not compatible")
		return
	case f.incr && len(rest) > 2:
		c.w.WriteError("ERR INCR option supports a single increment-element pair")
		return
	}
	zadd(n, c, args[1], f, rest)
}

// cmdZIncrBy is ZINCRBY key increment member: ZADD INCR.
func cmdZIncrBy(n *Node, c *client, args [][]byte) {
	zadd(n, c, args[1], zaddFlags{incr: true}, args[2:])
}

// zadd applies ZADD's score-member pairs with Redis's zsetAdd rules, and
// answers as ZADD (added, or added and changed with CH) or, with INCR, the
// member's new score.
func zadd(n *Node, c *client, key []byte, f zaddFlags, pairs [][]byte) {
	scores := make([]float64, len(pairs)/2)
	for j := range scores {
		var ok bool
		if scores[j], ok = parseScore(pairs[2*j]); !ok {
			c.w.WriteError(errNotFloat)
			return
		}
		scores[j] += 0 // -0 is 0, as a small Redis set stores it
	}
	var added, updated, processed, refreshed int
	var result float64
	err := c.update(func(tx *keyspace.Tx) error {
		added, updated, processed, refreshed = 0, 0, 0, 0
		w, err := n.beginTyped(tx, key, record.KindZSet, n.nowMillis())
		if err != nil {
			return err
		}
		if !w.live && f.xx {
			return nil
		}
		for j, score := range scores {
			member := pairs[2*j+1]
			cur, exists := w.score(member)
			if !exists {
				if f.xx {
					continue
				}
				if f.incr && !math.IsInf(score, 0) {
					if _, err := w.op.SetScore(member, 0); err != nil {
						return err
					}
					w.op.IncrScore(member, score)
					result, _ = w.op.ScoreAfter(member)
				} else {
					if _, err := w.op.SetScore(member, score); err != nil {
						return err
					}
					result = score
				}
				added++
				processed++
				continue
			}
			if f.nx {
				continue
			}
			by := score
			if f.incr {
				score += cur
				if math.IsNaN(score) {
					return replyErr(errZNaN)
				}
			}
			if f.lt && score >= cur || f.gt && score <= cur {
				continue
			}
			processed++
			result = score
			if score == cur {
				if !f.incr {
					// The member is added again at its score, with a
					// fresh dot, so that this add wins over a concurrent
					// ZREM elsewhere, as an SADD of a held member does
					// (record.TypedOp.AddMember); the reply counts no
					// change.
					refreshed++
					if _, err := w.op.SetScore(member, score); err != nil {
						return err
					}
				}
				continue
			}
			updated++
			own := w.op.OwnScoreTotal(member) + by
			if f.incr && !math.IsInf(own, 0) && !math.IsNaN(own) && !math.IsInf(score, 0) {
				w.op.IncrScore(member, by)
				result, _ = w.op.ScoreAfter(member)
			} else if _, err := w.op.SetScore(member, score); err != nil {
				return err
			}
		}
		switch {
		case added+updated+refreshed == 0:
			return nil
		case added+updated == 0:
			return w.commitUnseen(tx)
		}
		return w.commit(tx)
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case f.incr && processed == 0:
		c.w.WriteNull()
	case f.incr:
		c.w.WriteBulkString(formatScore(result))
	case f.ch:
		c.w.WriteInt(added + updated)
	default:
		c.w.WriteInt(added)
	}
}

// score is member's score as this write sees it: the key's, or what the
// write itself already gave it.
func (w *typedWrite) score(member []byte) (float64, bool) {
	if own(w.t.Scored, member) >= 0 {
		return w.op.ScoreAfter(member)
	}
	if !w.live {
		return 0, false
	}
	return w.op.Score(member)
}

func cmdZRem(n *Node, c *client, args [][]byte) {
	removed := 0
	err := c.update(func(tx *keyspace.Tx) error {
		removed = 0
		w, err := n.beginTyped(tx, args[1], record.KindZSet, n.nowMillis())
		if err != nil || !w.live {
			return err
		}
		done := make(map[string]bool, len(args)-2)
		for _, m := range args[2:] {
			if _, ok := w.cur.Typed.Score(m); ok && !done[string(m)] {
				done[string(m)] = true
				removed++
				w.op.RemScored(m)
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

func cmdZCard(n *Node, c *client, args [][]byte) {
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(z.ZLen())
}

func cmdZScore(n *Node, c *client, args [][]byte) {
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	if s, ok := z.Score(args[2]); ok {
		c.w.WriteBulkString(formatScore(s))
		return
	}
	c.w.WriteNull()
}

func cmdZMScore(n *Node, c *client, args [][]byte) {
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteArray(len(args) - 2)
	for _, m := range args[2:] {
		if s, ok := z.Score(m); ok {
			c.w.WriteBulkString(formatScore(s))
		} else {
			c.w.WriteNull()
		}
	}
}

func cmdZRank(n *Node, c *client, args [][]byte)    { zrank(n, c, args, false) }
func cmdZRevRank(n *Node, c *client, args [][]byte) { zrank(n, c, args, true) }

func zrank(n *Node, c *client, args [][]byte, rev bool) {
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	v := z.ZView()
	r, ok := z.Rank(v, args[2])
	if !ok {
		c.w.WriteNull()
		return
	}
	if rev {
		r = v.Len() - 1 - r
	}
	c.w.WriteInt(r)
}

// scoreSpan is the ranks [lo, hi) of the members in r.
func scoreSpan(v record.ZView, r scoreRange) (lo, hi int) {
	lo = v.Search(func(e record.ZEntry) bool { return r.gteMin(e.Score) })
	hi = v.Search(func(e record.ZEntry) bool { return e.Score > r.max || r.maxex && e.Score == r.max })
	return lo, max(lo, hi)
}

// lexSpan is the ranks [lo, hi) of the members in r.
func lexSpan(v record.ZView, r lexRange) (lo, hi int) {
	lo = v.Search(func(e record.ZEntry) bool { return r.gteMin(e.Name) })
	hi = v.Search(func(e record.ZEntry) bool { return !r.lteMax(e.Name) })
	return lo, max(lo, hi)
}

func cmdZCount(n *Node, c *client, args [][]byte) {
	r, ok := parseScoreRange(args[2], args[3])
	if !ok {
		c.w.WriteError(errZNotFloat)
		return
	}
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	lo, hi := scoreSpan(z.ZView(), r)
	c.w.WriteInt(hi - lo)
}

func cmdZLexCount(n *Node, c *client, args [][]byte) {
	r, ok := parseLexRange(args[2], args[3])
	if !ok {
		c.w.WriteError(errZNotLex)
		return
	}
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	lo, hi := lexSpan(z.ZView(), r)
	c.w.WriteInt(hi - lo)
}

// zrangeKind is how a range is given.
type zrangeKind int

const (
	byAuto zrangeKind = iota
	byRank
	byScore
	byLex
)

// zrangeSpec is a parsed ZRANGE family command.
type zrangeSpec struct {
	by            zrangeKind
	rev           bool
	withScores    bool
	offset, limit int64
	start, end    int64 // by rank
	score         scoreRange
	lex           lexRange
}

// parseZRange parses ZRANGE's arguments after the key (min, max, options),
// with Redis's checks in Redis's order; by and rev are fixed by the command
// (ZRANGEBYSCORE, ZREVRANGE ...) or byAuto and false for ZRANGE.
func parseZRange(args [][]byte, by zrangeKind, rev, revFixed, store bool) (zrangeSpec, error) {
	s := zrangeSpec{by: by, rev: rev, limit: -1}
	for j := 2; j < len(args); j++ {
		left := len(args) - j - 1
		switch {
		case !store && equalFold(args[j], "withscores"):
			s.withScores = true
		case equalFold(args[j], "limit") && left >= 2:
			var ok1, ok2 bool
			s.offset, ok1 = parseInt(args[j+1])
			s.limit, ok2 = parseInt(args[j+2])
			if !ok1 || !ok2 {
				return s, replyErr(errNotInteger)
			}
			j += 2
		case !revFixed && equalFold(args[j], "rev"):
			s.rev = true
		case s.by == byAuto && equalFold(args[j], "bylex"):
			s.by = byLex
		case s.by == byAuto && equalFold(args[j], "byscore"):
			s.by = byScore
		default:
			return s, replyErr(errSyntax)
		}
	}
	if s.by == byAuto {
		s.by = byRank
	}
	if s.limit != -1 && s.by == byRank {
		return s, replyErr("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
	}
	if s.withScores && s.by == byLex {
		return s, replyErr("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
	}
	min, max := args[0], args[1]
	if s.rev && s.by != byRank {
		min, max = max, min
	}
	var ok bool
	switch s.by {
	case byRank:
		var ok1, ok2 bool
		s.start, ok1 = parseInt(min)
		s.end, ok2 = parseInt(max)
		if !ok1 || !ok2 {
			return s, replyErr(errNotInteger)
		}
	case byScore:
		if s.score, ok = parseScoreRange(min, max); !ok {
			return s, replyErr(errZNotFloat)
		}
	case byLex:
		if s.lex, ok = parseLexRange(min, max); !ok {
			return s, replyErr(errZNotLex)
		}
	}
	return s, nil
}

// rangeOf lists the members s selects, in the order it answers them.
func rangeOf(v record.ZView, s zrangeSpec) []record.ZEntry {
	var out []record.ZEntry
	size := int64(v.Len())
	if s.by == byRank {
		start, end := s.start, s.end
		if start < 0 {
			start += size
		}
		if end < 0 {
			end += size
		}
		start = max(start, 0)
		if start > end || start >= size {
			return nil
		}
		end = min(end, size-1)
		n := int(end - start + 1)
		out = make([]record.ZEntry, 0, n)
		emit := func(e record.ZEntry) bool { out = append(out, e); return len(out) < n }
		if s.rev {
			v.Descend(int(size-1-start), emit)
		} else {
			v.Ascend(int(start), emit)
		}
		return out
	}
	if s.offset < 0 || s.offset > 0 && s.offset >= size || s.limit == 0 {
		return nil
	}
	// The near end is found by a search, then the walk stops at the far
	// end: a range costs one search and its members.
	var start int
	var within func(record.ZEntry) bool // the far end's test
	switch {
	case s.by == byScore && s.rev:
		start = v.Search(func(e record.ZEntry) bool { return !s.score.lteMax(e.Score) }) - 1
		within = func(e record.ZEntry) bool { return s.score.gteMin(e.Score) }
	case s.by == byScore:
		start = v.Search(func(e record.ZEntry) bool { return s.score.gteMin(e.Score) })
		within = func(e record.ZEntry) bool { return s.score.lteMax(e.Score) }
	case s.rev:
		start = v.Search(func(e record.ZEntry) bool { return !s.lex.lteMax(e.Name) }) - 1
		within = func(e record.ZEntry) bool { return s.lex.gteMin(e.Name) }
	default:
		start = v.Search(func(e record.ZEntry) bool { return s.lex.gteMin(e.Name) })
		within = func(e record.ZEntry) bool { return s.lex.lteMax(e.Name) }
	}
	emit := func(e record.ZEntry) bool {
		if !within(e) {
			return false
		}
		out = append(out, e)
		return s.limit < 0 || int64(len(out)) < s.limit
	}
	if s.rev {
		v.Descend(start-int(s.offset), emit)
	} else {
		v.Ascend(start+int(s.offset), emit)
	}
	return out
}

func writeZEntries(c *client, es []record.ZEntry, withScores bool) {
	if withScores {
		c.w.WriteArray(2 * len(es))
	} else {
		c.w.WriteArray(len(es))
	}
	for _, e := range es {
		c.w.WriteBulk(e.Name)
		if withScores {
			c.w.WriteBulkString(formatScore(e.Score))
		}
	}
}

func cmdZRange(n *Node, c *client, args [][]byte) { zrange(n, c, args, byAuto, false, false) }
func cmdZRevRange(n *Node, c *client, args [][]byte) {
	zrange(n, c, args, byRank, true, true)
}
func cmdZRangeByScore(n *Node, c *client, args [][]byte) {
	zrange(n, c, args, byScore, false, true)
}
func cmdZRevRangeByScore(n *Node, c *client, args [][]byte) {
	zrange(n, c, args, byScore, true, true)
}
func cmdZRangeByLex(n *Node, c *client, args [][]byte) { zrange(n, c, args, byLex, false, true) }
func cmdZRevRangeByLex(n *Node, c *client, args [][]byte) {
	zrange(n, c, args, byLex, true, true)
}

func zrange(n *Node, c *client, args [][]byte, by zrangeKind, rev, revFixed bool) {
	s, err := parseZRange(args[2:], by, rev, revFixed, false)
	if err != nil {
		c.writeErr(err)
		return
	}
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	writeZEntries(c, rangeOf(z.ZView(), s), s.withScores)
}

// cmdZRangeStore is ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV]
// [LIMIT offset count].
func cmdZRangeStore(n *Node, c *client, args [][]byte) {
	s, err := parseZRange(args[3:], byAuto, false, false, true)
	if err != nil {
		c.writeErr(err)
		return
	}
	stored := 0
	err = c.update(func(tx *keyspace.Tx) error {
		now := n.nowMillis()
		src, err := tx.Get(args[2])
		if err != nil {
			return err
		}
		live, err := liveKind(src, now, record.KindZSet)
		if err != nil {
			return err
		}
		var es []record.ZEntry
		if live {
			es = rangeOf(src.Typed.ZView(), s)
		}
		stored = len(es)
		return n.storeZSet(tx, args[1], es, now)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(stored)
}

// storeZSet makes key the sorted set of es, replacing what it held; no
// members deletes it.
func (n *Node) storeZSet(tx *keyspace.Tx, key []byte, es []record.ZEntry, now int64) error {
	if len(es) == 0 {
		if !liveKey(tx, key, now) {
			return nil
		}
		return n.deleteKey(tx, key)
	}
	w, err := n.replaceTyped(tx, key, record.KindZSet)
	if err != nil {
		return err
	}
	for _, e := range es {
		if _, err := w.op.SetScore(e.Name, e.Score); err != nil {
			return err
		}
	}
	return w.commit(tx)
}

func cmdZRemRangeByRank(n *Node, c *client, args [][]byte) {
	zremrange(n, c, args, byRank)
}
func cmdZRemRangeByScore(n *Node, c *client, args [][]byte) {
	zremrange(n, c, args, byScore)
}
func cmdZRemRangeByLex(n *Node, c *client, args [][]byte) { zremrange(n, c, args, byLex) }

// zremrange is ZREMRANGEBYRANK, ZREMRANGEBYSCORE and ZREMRANGEBYLEX: removes
// the members in range as this node sees them.
func zremrange(n *Node, c *client, args [][]byte, by zrangeKind) {
	s := zrangeSpec{by: by, limit: -1}
	var ok bool
	switch by {
	case byRank:
		var ok1, ok2 bool
		s.start, ok1 = parseInt(args[2])
		s.end, ok2 = parseInt(args[3])
		if !ok1 || !ok2 {
			c.w.WriteError(errNotInteger)
			return
		}
	case byScore:
		if s.score, ok = parseScoreRange(args[2], args[3]); !ok {
			c.w.WriteError(errZNotFloat)
			return
		}
	case byLex:
		if s.lex, ok = parseLexRange(args[2], args[3]); !ok {
			c.w.WriteError(errZNotLex)
			return
		}
	}
	removed := 0
	err := c.update(func(tx *keyspace.Tx) error {
		removed = 0
		w, err := n.beginTyped(tx, args[1], record.KindZSet, n.nowMillis())
		if err != nil || !w.live {
			return err
		}
		es := rangeOf(w.cur.Typed.ZView(), s)
		for _, e := range es {
			w.op.RemScored(e.Name)
		}
		removed = len(es)
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

func cmdZPopMin(n *Node, c *client, args [][]byte) { zpopCmd(n, c, args, false) }
func cmdZPopMax(n *Node, c *client, args [][]byte) { zpopCmd(n, c, args, true) }

func zpopCmd(n *Node, c *client, args [][]byte, fromMax bool) {
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
	var popped []record.ZEntry
	err := c.update(func(tx *keyspace.Tx) error {
		var err error
		popped, _, err = n.zpop(tx, args[1], fromMax, count)
		return err
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	writeZEntries(c, popped, true)
}

// zpop removes up to count members from one end of key's sorted set, as
// this node sees it; found reports whether key holds a sorted set.
func (n *Node) zpop(tx *keyspace.Tx, key []byte, fromMax bool, count int64) (popped []record.ZEntry, found bool, err error) {
	w, err := n.beginTyped(tx, key, record.KindZSet, n.nowMillis())
	if err != nil {
		return nil, false, err
	}
	if !w.live || count == 0 {
		return nil, w.live, nil
	}
	v := w.cur.Typed.ZView()
	k := int(min(count, int64(v.Len())))
	emit := func(e record.ZEntry) bool { popped = append(popped, e); return len(popped) < k }
	if fromMax {
		v.Descend(v.Len()-1, emit)
	} else {
		v.Ascend(0, emit)
	}
	for _, e := range popped {
		w.op.RemScored(e.Name)
	}
	return popped, true, w.commit(tx)
}

// zmpopArgs are ZMPOP's and BZMPOP's arguments.
type zmpopArgs struct {
	keys    [][]byte
	fromMax bool
	count   int64
}

// parseZMPop reads numkeys key [key ...] MIN|MAX [COUNT count] from
// args[at:], with Redis's checks in Redis's order.
func parseZMPop(args [][]byte, at int) (zmpopArgs, error) {
	var a zmpopArgs
	numkeys, ok := parseInt(args[at])
	if !ok || numkeys < 1 {
		return a, replyErr("ERR numkeys should be greater than 0")
	}
	if numkeys >= int64(len(args)) { // before the sum below can overflow
		return a, replyErr(errSyntax)
	}
	whereIdx := int64(at) + 1 + numkeys
	if whereIdx >= int64(len(args)) {
		return a, replyErr(errSyntax)
	}
	switch {
	case equalFold(args[whereIdx], "min"):
	case equalFold(args[whereIdx], "max"):
		a.fromMax = true
	default:
		return a, replyErr(errSyntax)
	}
	a.count = -1
	for j := int(whereIdx) + 1; j < len(args); j++ {
		if a.count == -1 && equalFold(args[j], "count") && j+1 < len(args) {
			j++
			if a.count, ok = parseInt(args[j]); !ok || a.count < 1 {
				return a, replyErr("ERR count should be greater than 0")
			}
			continue
		}
		return a, replyErr(errSyntax)
	}
	if a.count == -1 {
		a.count = 1
	}
	a.keys = args[at+1 : whereIdx]
	return a, nil
}

// cmdZMPop is ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: pops from
// the first key that holds a sorted set.
func cmdZMPop(n *Node, c *client, args [][]byte) {
	a, err := parseZMPop(args, 1)
	if err != nil {
		c.writeErr(err)
		return
	}
	var popped []record.ZEntry
	var from []byte
	err = c.update(func(tx *keyspace.Tx) error {
		var err error
		popped, from, err = n.zmpop(tx, a, false)
		return err
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case from == nil:
		c.w.WriteRaw([]byte("*-1\r\n")) // a null array: no key held a sorted set
	default:
		writeZMPop(c, from, popped)
	}
}

// zmpop pops from the first of a.keys that holds a sorted set; a retry of
// a blocked client passes over keys of another type, as Redis 7.0 leaves
// such a client blocked.
func (n *Node) zmpop(tx *keyspace.Tx, a zmpopArgs, skipWrongType bool) (popped []record.ZEntry, from []byte, err error) {
	for _, k := range a.keys {
		p, found, err := n.zpop(tx, k, a.fromMax, a.count)
		if err != nil {
			if skipWrongType && isWrongType(err) {
				continue
			}
			return nil, nil, err
		}
		if found {
			return p, k, nil
		}
	}
	return nil, nil, nil
}

func writeZMPop(c *client, from []byte, popped []record.ZEntry) {
	c.w.WriteArray(2)
	c.w.WriteBulk(from)
	c.w.WriteArray(len(popped))
	for _, e := range popped {
		c.w.WriteArray(2)
		c.w.WriteBulk(e.Name)
		c.w.WriteBulkString(formatScore(e.Score))
	}
}

// cmdZRandMember is ZRANDMEMBER key [count [WITHSCORES]], with Redis's
// count rules (see randomPicks); a count at least the set's size answers
// every member in order, as Redis does.
func cmdZRandMember(n *Node, c *client, args [][]byte) {
	var count int64
	withScores := false
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
		if len(args) > 4 || len(args) == 4 && !equalFold(args[3], "withscores") {
			c.w.WriteError(errSyntax)
			return
		}
		if withScores = len(args) == 4; withScores && (count < -(1<<63-1)/2 || count > (1<<63-1)/2) {
			c.w.WriteError("ERR value is out of range")
			return
		}
	}
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	v := z.ZView()
	if len(args) == 2 {
		if v.Len() == 0 {
			c.w.WriteNull()
			return
		}
		c.w.WriteBulk(v.At(rand.IntN(v.Len())).Name)
		return
	}
	if count < 0 && v.Len() > 0 {
		// Picks that may repeat, written as drawn: nothing of the count's
		// size is allocated besides the reply.
		per := 1 + int64(boolInt(withScores))
		c.w.WriteArray(int(-count * per))
		for i := range -count {
			e := v.At(rand.IntN(v.Len()))
			c.w.WriteBulk(e.Name)
			if withScores {
				c.w.WriteBulkString(formatScore(e.Score))
			}
			if i%1024 == 0 {
				c.w.spill()
			}
		}
		return
	}
	var picks []record.ZEntry
	switch {
	case count >= int64(v.Len()):
		// Every member, from the highest, as Redis's iterator walks.
		v.Descend(v.Len()-1, func(e record.ZEntry) bool { picks = append(picks, e); return true })
	case count > 0 && count <= int64(v.Len())/4:
		seen := make(map[int]bool, count)
		for int64(len(picks)) < count {
			if i := rand.IntN(v.Len()); !seen[i] {
				seen[i] = true
				picks = append(picks, v.At(i))
			}
		}
	default:
		for _, i := range randomPicks(v.Len(), count) {
			picks = append(picks, v.At(i))
		}
	}
	writeZEntries(c, picks, withScores)
}

// zsetOp is a sorted-set algebra command.
type zsetOp int

const (
	zUnion zsetOp = iota
	zInter
	zDiff
)

// zsource is an algebra command's input: a sorted set, or a set whose
// members score 1.
type zsource struct {
	z      *record.Typed
	set    bool
	weight float64
	key    string
}

func (s zsource) size() int {
	if s.set {
		return s.z.Len()
	}
	return s.z.ZLen()
}

func (s zsource) score(m []byte) (float64, bool) {
	if s.set {
		return 1, s.z.HasMember(m)
	}
	return s.z.Score(m)
}

func (s zsource) each(fn func(record.ZEntry)) {
	if s.set {
		s.z.EachMember(func(m []byte) bool { fn(record.ZEntry{Name: m, Score: 1}); return true })
		return
	}
	v := s.z.ZView()
	v.Ascend(0, func(e record.ZEntry) bool { fn(e); return true })
}

// zalgebra is a parsed ZUNION/ZINTER/ZDIFF family command.
type zalgebra struct {
	op         zsetOp
	keys       [][]byte
	aggregate  string
	withScores bool
	limit      int64
	weights    [][]byte
}

// parseZAlgebra reads numkeys and the keys from args[i:] (the options after
// them are read by parseOptions); name is the command's, for an error.
func parseZAlgebra(args [][]byte, i int, op zsetOp, name string) (zalgebra, error) {
	a := zalgebra{op: op, aggregate: "sum"}
	numkeys, ok := parseInt(args[i])
	if !ok {
		return a, replyErr(errNotInteger)
	}
	if numkeys < 1 {
		return a, replyErr("ERR at least 1 input key is needed for '" + name + "' command")
	}
	if numkeys > int64(len(args)-i-1) {
		return a, replyErr(errSyntax)
	}
	a.keys = args[i+1 : i+1+int(numkeys)]
	return a, nil
}

// parseOptions reads the options after the keys; Redis looks the keys up
// first, so a WRONGTYPE key answers before a bad option.
func (a *zalgebra) parseOptions(rest [][]byte, store, card bool) error {
	for j := 0; j < len(rest); {
		left := len(rest) - j
		switch {
		case a.op != zDiff && !card && left >= len(a.keys)+1 && equalFold(rest[j], "weights"):
			a.weights = rest[j+1 : j+1+len(a.keys)]
			for _, w := range a.weights {
				if _, ok := parseScore(w); !ok {
					return replyErr(errWeightNoFloat)
				}
			}
			j += 1 + len(a.keys)
		case a.op != zDiff && !card && left >= 2 && equalFold(rest[j], "aggregate"):
			switch agg := strings.ToLower(string(rest[j+1])); agg {
			case "sum", "min", "max":
				a.aggregate = agg
			default:
				return replyErr(errSyntax)
			}
			j += 2
		case !store && !card && equalFold(rest[j], "withscores"):
			a.withScores = true
			j++
		case card && left >= 2 && equalFold(rest[j], "limit"):
			l, ok := parseInt(rest[j+1])
			if !ok || l < 0 {
				return replyErr("ERR LIMIT can't be negative")
			}
			a.limit = l
			j += 2
		default:
			return replyErr(errSyntax)
		}
	}
	return nil
}

// readZSources reads keys as sorted sets or sets (WRONGTYPE for any other
// kind); a key the client does not see is empty.
func readZSources(get func([]byte) (record.Record, error), keys [][]byte, now int64) ([]zsource, error) {
	out := make([]zsource, len(keys))
	for i, k := range keys {
		rec, err := get(k)
		if err != nil {
			return nil, err
		}
		out[i] = zsource{weight: 1, key: string(k)}
		if !rec.Live(now) {
			continue
		}
		switch rec.Kind() {
		case record.KindZSet:
			out[i].z = rec.Typed
		case record.KindSet:
			out[i].z, out[i].set = rec.Typed, true
		default:
			return nil, replyErr(errWrongType)
		}
	}
	return out, nil
}

// aggregate folds v into *t as Redis's zunionInterAggregate.
func aggregate(t *float64, v float64, how string) {
	switch how {
	case "sum":
		*t += v
		if math.IsNaN(*t) {
			*t = 0
		}
	case "min":
		*t = min(*t, v)
	case "max":
		*t = max(*t, v)
	}
}

// weighted is score times weight, NaN (0 × inf) being 0.
func weighted(score, weight float64) float64 {
	if s := score * weight; !math.IsNaN(s) {
		return s
	}
	return 0
}

// compute runs the algebra over srcs, in score order; with card it counts up
// to limit (0: no limit) instead of listing.
func (a *zalgebra) compute(srcs []zsource, card bool) ([]record.ZEntry, int) {
	for i, w := range a.weights {
		srcs[i].weight, _ = parseScore(w)
	}
	if a.op != zDiff {
		// By size, as Redis does (its qsort keeps equal sizes in order).
		slices.SortStableFunc(srcs, func(x, y zsource) int { return x.size() - y.size() })
	}
	var out []record.ZEntry
	count := 0
	switch a.op {
	case zInter:
		if srcs[0].size() == 0 {
			break
		}
		done := false
		srcs[0].each(func(e record.ZEntry) {
			if done {
				return
			}
			score := weighted(e.Score, srcs[0].weight)
			for _, s := range srcs[1:] {
				v, ok := e.Score, s.key == srcs[0].key
				if !ok {
					if v, ok = s.score(e.Name); !ok {
						return
					}
				}
				aggregate(&score, v*s.weight, a.aggregate)
			}
			if card {
				count++
				done = a.limit > 0 && int64(count) >= a.limit
				return
			}
			out = append(out, record.ZEntry{Name: e.Name, Score: score})
		})
	case zUnion:
		at := map[string]int{}
		for _, s := range srcs {
			s.each(func(e record.ZEntry) {
				score := weighted(e.Score, s.weight)
				if i, ok := at[string(e.Name)]; ok {
					aggregate(&out[i].Score, score, a.aggregate)
					return
				}
				at[string(e.Name)] = len(out)
				out = append(out, record.ZEntry{Name: e.Name, Score: score})
			})
		}
	case zDiff:
		srcs[0].each(func(e record.ZEntry) {
			for _, s := range srcs[1:] {
				if _, ok := s.score(e.Name); ok {
					return
				}
			}
			out = append(out, e)
		})
	}
	slices.SortFunc(out, record.CompareZ)
	return out, count
}

func cmdZUnion(n *Node, c *client, args [][]byte) { zalgebraRead(n, c, args, zUnion, "zunion") }
func cmdZInter(n *Node, c *client, args [][]byte) { zalgebraRead(n, c, args, zInter, "zinter") }
func cmdZDiff(n *Node, c *client, args [][]byte)  { zalgebraRead(n, c, args, zDiff, "zdiff") }

func cmdZInterCard(n *Node, c *client, args [][]byte) {
	zalgebraRead(n, c, args, zInter, "zintercard")
}

func zalgebraRead(n *Node, c *client, args [][]byte, op zsetOp, name string) {
	card := name == "zintercard"
	a, err := parseZAlgebra(args, 1, op, name)
	if err != nil {
		c.writeErr(err)
		return
	}
	srcs, err := readZSources(c.get, a.keys, n.nowMillis())
	if err != nil {
		c.writeErr(err)
		return
	}
	if err := a.parseOptions(args[2+len(a.keys):], false, card); err != nil {
		c.writeErr(err)
		return
	}
	out, count := a.compute(srcs, card)
	if card {
		c.w.WriteInt(count)
		return
	}
	writeZEntries(c, out, a.withScores)
}

func cmdZUnionStore(n *Node, c *client, args [][]byte) {
	zalgebraStore(n, c, args, zUnion, "zunionstore")
}
func cmdZInterStore(n *Node, c *client, args [][]byte) {
	zalgebraStore(n, c, args, zInter, "zinterstore")
}
func cmdZDiffStore(n *Node, c *client, args [][]byte) {
	zalgebraStore(n, c, args, zDiff, "zdiffstore")
}

// zalgebraStore is ZUNIONSTORE, ZINTERSTORE and ZDIFFSTORE: the destination
// becomes the result, whatever it held; an empty result deletes it.
func zalgebraStore(n *Node, c *client, args [][]byte, op zsetOp, name string) {
	a, err := parseZAlgebra(args, 2, op, name)
	if err != nil {
		c.writeErr(err)
		return
	}
	size := 0
	err = c.update(func(tx *keyspace.Tx) error {
		now := n.nowMillis()
		srcs, err := readZSources(tx.Get, a.keys, now)
		if err != nil {
			return err
		}
		if err := a.parseOptions(args[3+len(a.keys):], true, false); err != nil {
			return err
		}
		out, _ := a.compute(srcs, false)
		size = len(out)
		return n.storeZSet(tx, args[1], out, now)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(size)
}

// cmdZScan is ZSCAN key cursor [MATCH pattern] [COUNT count]: a small set
// answers every member at once, in score order, as Redis's listpack does;
// scores in d2string's form, as Redis keeps them.
func cmdZScan(n *Node, c *client, args [][]byte) {
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
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	v := z.ZView()
	var names [][]byte
	var scores []float64
	v.Ascend(0, func(e record.ZEntry) bool {
		names, scores = append(names, e.Name), append(scores, e.Score)
		return true
	})
	next, picked := scanElements(names, cursor, o)
	c.w.WriteArray(2)
	c.w.WriteBulkString(strconv.FormatUint(next, 10))
	c.w.WriteArray(2 * len(picked))
	for _, i := range picked {
		c.w.WriteBulk(names[i])
		c.w.WriteBulkString(d2string(scores[i]))
	}
}

// zsetEncoding is the encoding Redis 7.0 would give a sorted set of z's
// members.
func zsetEncoding(z *record.Typed) string {
	if z.ZLen() > zsetMaxListpackEntries {
		return "skiplist"
	}
	small := true
	v := z.ZView()
	v.Ascend(0, func(e record.ZEntry) bool {
		small = len(e.Name) <= zsetMaxListpackValue
		return small
	})
	if small {
		return "listpack"
	}
	return "skiplist"
}

// eachZEntry is z's members in score order, for a copy.
func eachZEntry(z *record.Typed, fn func(record.ZEntry) bool) {
	v := z.ZView()
	v.Ascend(0, fn)
}
