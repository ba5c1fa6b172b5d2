package bridge

import (
	"bytes"
	"math"
	"strconv"

	"github.com/redmesh/redmesh/bridge/whole"
	"github.com/redmesh/redmesh/node"
	"github.com/redmesh/redmesh/record"
)

// expiryLeeway: a key the backend no longer has, whose deadline in the node
// is this close, expired there; the node expires it too, at the same
// deadline, so the bridge writes no delete (a delete would be a new version,
// able to beat a concurrent write elsewhere).
const expiryLeeway = 2000 // ms

// takeIn writes the backend's state b of key into the node as local writes
// with fresh versions: only the difference from what the node holds, so
// that it merges with concurrent edits elsewhere as the client commands it
// stands for would. A different string is a SET; hash fields and set
// members are written one by one (HSET/HDEL, SADD/SREM); a different
// deadline is a PEXPIREAT or PERSIST. Sorted-set members are written one
// by one too (ZADD/ZREM); a list at its ends and in place (see listDiff); a
// type redmesh does not model whole, as a string holding its DUMP payload
// (see package whole). Where additive, given the digest of
// the node's state, says so, nothing the node holds is removed because the
// backend lacks it (a key, a field, a member): the backend may not have been
// given it yet. It reports whether it wrote.
func takeIn(l *node.LocalTx, key []byte, b State, additiveFor func(nodeDigest uint64) bool) (bool, error) {
	cur, live, err := l.Get(key)
	if err != nil {
		return false, err
	}
	n := FromRecord(cur, live)
	nd := n.Digest()
	if nd == b.Digest() {
		return false, nil
	}
	additive := additiveFor(nd)
	switch b.Kind {
	case None:
		if additive || !live || (cur.Expiry.At != 0 && cur.Expiry.At <= l.Now()+expiryLeeway) {
			return false, nil
		}
		return true, l.Delete(key)
	case String:
		if n.Kind != String || !bytes.Equal(n.Str, b.Str) {
			return true, l.SetString(key, b.Str, b.At)
		}
		return true, l.SetExpiry(key, b.At)
	case Whole: // a register, as a string: last writer wins
		if n.Kind != Whole || n.Type != b.Type || !bytes.Equal(n.Str, b.Str) {
			return true, l.SetString(key, whole.Wrap(b.Type, b.Str), b.At)
		}
		return true, l.SetExpiry(key, b.At)
	case List:
		e := listDiff(n, b, additive)
		if e.DropHead == 0 && e.DropTail == 0 && len(e.Set) == 0 && e.Head == nil && e.Tail == nil {
			if n.At == b.At || n.Kind != b.Kind {
				return false, nil
			}
			return true, l.SetExpiry(key, b.At)
		}
		return true, l.EditList(key, e)
	case Hash, Set, ZSet:
		e := typedDiff(n, b, additive)
		if e.Set == nil && e.Del == nil && e.Add == nil && e.Rem == nil {
			if n.At == b.At || n.Kind != b.Kind {
				return false, nil
			}
			return true, l.SetExpiry(key, b.At)
		}
		return true, l.EditTyped(key, e)
	}
	return false, nil // Other: not modelled
}

// pairMap indexes a state's name, value pairs (hash fields and values,
// sorted-set members and scores) by name.
func pairMap(fields [][]byte) map[string][]byte {
	m := make(map[string][]byte, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		m[string(fields[i])] = fields[i+1]
	}
	return m
}

// typedDiff is the field- or member-level write that takes the node's
// state n to the backend's b (without removals when additive).
func typedDiff(n, b State, additive bool) node.TypedEdit {
	e := node.TypedEdit{At: b.At, WithExpiry: n.Kind != b.Kind || n.At != b.At}
	if n.Kind != b.Kind {
		n = State{} // a key of another type is replaced as a whole
	}
	if b.Kind == ZSet {
		e.Kind = record.KindZSet
		have := pairMap(n.Fields)
		for i := 0; i+1 < len(b.Fields); i += 2 {
			m, sc := b.Fields[i], b.Fields[i+1]
			if old, ok := have[string(m)]; !ok || !bytes.Equal(old, sc) {
				f, err := strconv.ParseFloat(string(sc), 64)
				if err != nil || math.IsNaN(f) {
					continue // not a score: the backend never holds one
				}
				e.Add, e.Scores = append(e.Add, m), append(e.Scores, f)
			}
			delete(have, string(m))
		}
		if !additive {
			for m := range have {
				e.Rem = append(e.Rem, []byte(m))
			}
		}
		return e
	}
	if b.Kind == Hash {
		e.Kind = record.KindHash
		have := pairMap(n.Fields)
		for i := 0; i+1 < len(b.Fields); i += 2 {
			f, v := b.Fields[i], b.Fields[i+1]
			if old, ok := have[string(f)]; !ok || !bytes.Equal(old, v) {
				e.Set = append(e.Set, f, v)
			}
			delete(have, string(f))
		}
		if !additive {
			for f := range have {
				e.Del = append(e.Del, []byte(f))
			}
		}
		return e
	}
	e.Kind = record.KindSet
	have := make(map[string]bool, len(n.Members))
	for _, m := range n.Members {
		have[string(m)] = true
	}
	for _, m := range b.Members {
		if !have[string(m)] {
			e.Add = append(e.Add, m)
		}
		delete(have, string(m))
	}
	if !additive {
		for m := range have {
			e.Rem = append(e.Rem, []byte(m))
		}
	}
	return e
}

// listDiff is the write that takes the node's list n to the backend's b as
// LPOP/RPOP, LSET and LPUSH/RPUSH would: the longest run of elements the two
// share (by value, in order) is kept, the node's elements around it popped
// and the backend's pushed. Lists of the same length that share no run, or
// share one at the same index, differ by LSETs in place. Where additive,
// nothing is popped or set: the backend's elements around the run are
// pushed, as concurrent pushes at two sites merge. What this cannot see as such (an
// LINSERT or LREM in the middle) becomes a larger pop and push at one end,
// which merges as those pushes would; a list with nothing in common is
// replaced whole, as DEL and RPUSH would. A list of another key type's
// state is replaced whole too.
func listDiff(n, b State, additive bool) node.ListEdit {
	e := node.ListEdit{At: b.At, WithExpiry: n.Kind != b.Kind || n.At != b.At}
	if n.Kind != List {
		n, additive = State{}, false
	}
	i, k, run := commonRun(n.Members, b.Members)
	if additive {
		if run == 0 {
			k = 0
		}
		e.Head, e.Tail = b.Members[:k], b.Members[k+run:]
		if len(e.Head) == 0 {
			e.Head = nil
		}
		if len(e.Tail) == 0 {
			e.Tail = nil
		}
		return e
	}
	if len(n.Members) == len(b.Members) && len(n.Members) > 0 && (run == 0 || i == k) {
		e.Set = map[int][]byte{}
		for j, v := range b.Members {
			if !bytes.Equal(n.Members[j], v) {
				e.Set[j] = v
			}
		}
		return e
	}
	if run == 0 {
		e.DropHead = len(n.Members)
		if len(b.Members) > 0 {
			e.Tail = b.Members
		}
		return e
	}
	e.DropHead, e.DropTail = i, len(n.Members)-i-run
	if k > 0 {
		e.Head = b.Members[:k]
	}
	if k+run < len(b.Members) {
		e.Tail = b.Members[k+run:]
	}
	return e
}

// maxListWork bounds commonRun's comparisons; past it, lists are compared
// only at alignments a few elements from their ends' (pushes and pops of a
// few elements, what a notification's read usually finds).
const maxListWork = 1 << 18

// commonRun finds the longest run a[i:i+run] == b[k:k+run]. In-project:
// the longest common substring of two short sequences is a loop, not a
// library.
func commonRun(a, b [][]byte) (i, k, run int) {
	try := func(d int) { // b index minus a index
		cur := 0
		for ai := max(0, -d); ai < len(a) && ai+d < len(b); ai++ {
			if bytes.Equal(a[ai], b[ai+d]) {
				cur++
				if cur > run {
					i, k, run = ai-cur+1, ai+d-cur+1, cur
				}
			} else {
				cur = 0
			}
		}
	}
	if len(a)*len(b) > maxListWork {
		// Pops and pushes of a few elements at each end: the alignments
		// near the heads' and near the tails'.
		w := max(1, maxListWork/(4*max(len(a), len(b))))
		for d := -w; d <= w; d++ {
			try(d)
			try(len(b) - len(a) + d)
		}
		return i, k, run
	}
	for d := -len(a) + 1; d < len(b); d++ {
		try(d)
	}
	return i, k, run
}

// unlessSynced is additiveFor for a key whose backend state was last base:
// a node state other than base holds changes the backend has not got.
func unlessSynced(base uint64) func(uint64) bool {
	return func(nodeDigest uint64) bool { return nodeDigest != base }
}

// always is additiveFor's constant answer.
func always(additive bool) func(uint64) bool { return func(uint64) bool { return additive } }
