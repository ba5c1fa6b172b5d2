package bridge

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/bridge/whole"
	"github.com/redmesh/redmesh/longdouble"
	"github.com/redmesh/redmesh/node"
	"github.com/redmesh/redmesh/record"
)

// expiryLeeway: a key the backend no longer has, whose deadline in the node
// is this close, expired there; the node expires it too, at the same
// deadline, so the bridge writes no delete (a delete would be a new version,
// able to beat a concurrent write elsewhere).
const expiryLeeway = 2000 // ms

// change is what a take-in knows of the backend's state before the one
// it writes: from, the key's base (nil where unknown: a first start, a
// restarted backend, an import), or else additive, whether what the node
// holds and the backend lacks stays; and incr, whether the backend told of
// increments only (keyspace notifications, all zincr, incrby or hincrby,
// since the key was last read): a member's score, a string's integer or a
// hash field's integer the backend holds changed is then an increment by
// the difference from what it held before, which adds up with concurrent
// increments elsewhere, rather than a value set. What it held before is
// the base's score or integer (0 for what it did not hold).
type change struct {
	from     *base
	additive bool
	incr     bool
}

// takeIn writes the backend's state b of key into the node as local writes
// with fresh versions: only what the backend changed, so that it merges with
// concurrent edits elsewhere as the client commands it stands for would. A
// changed string is a SET; hash fields and set members are written one by
// one (HSET/HDEL, SADD/SREM), sorted-set members too (ZADD/ZREM); a changed
// deadline is a PEXPIREAT or PERSIST; a list is written at its ends and in
// place (see listDiff); a type redmesh does not model whole, as a string
// holding its DUMP payload (see package whole). With the key's base known,
// what changed is what differs from the base: an element or value the
// backend still holds as it held it is no change there, even where the node
// holds another (a peer's newer record the backend has not got yet), and
// only what the base held and the backend no longer does is removed — the
// removal, versioned now, removes whatever the node holds of it. Without a
// base, the change is the difference from the node's state (without
// removals where additive). It reports whether it wrote.
func takeIn(l *node.LocalTx, key []byte, b State, c change) (bool, error) {
	cur, live, err := l.Get(key)
	if err != nil {
		return false, err
	}
	n := FromRecord(cur, live)
	if n.Digest() == b.Digest() && !c.incr {
		// Increments are not: the node may hold the backend's result by
		// another site's increment, the backend's still to add.
		return false, nil
	}
	if b.Kind == None && c.from != nil && live && n.Kind == Kind(c.from.Kind) && !expired(c.from, l.Now()) {
		switch n.Kind {
		case Hash, Set, ZSet, List:
			// A collection emptied or deleted in the backend: what it held
			// is removed, element by element, as observed there; what the
			// node holds beyond it (not yet written there) stays.
			b = State{Kind: n.Kind, At: c.from.At}
		}
	}
	switch b.Kind {
	case None:
		if !live {
			return false, nil
		}
		if c.from == nil {
			if c.additive || (cur.Expiry.At != 0 && cur.Expiry.At <= l.Now()+expiryLeeway) {
				return false, nil
			}
			return true, l.Delete(key)
		}
		if Kind(c.from.Kind) == None || expired(c.from, l.Now()) {
			// The backend never held it, or it expired there.
			return false, nil
		}
		return true, l.Delete(key)
	case String:
		if c.from != nil && sameValue(c.from, b) {
			return setExpiry(l, key, n, b, c) // only the deadline changed there
		}
		if was, ok := stringWas(b, c); ok {
			switch done, err := increment(l, key, nil, was, b.Str); {
			case err != nil:
				return false, err
			case done:
				_, err = setExpiry(l, key, n, b, c)
				return true, err
			} // not a counter in the node: the value is set
		}
		if n.Kind != String || !bytes.Equal(n.Str, b.Str) {
			return true, l.SetString(key, b.Str, b.At)
		}
		return setExpiry(l, key, n, b, c)
	case Whole: // a register, as a string: last writer wins
		if c.from != nil && sameValue(c.from, b) {
			return setExpiry(l, key, n, b, c)
		}
		if n.Kind != Whole || n.Type != b.Type || !bytes.Equal(n.Str, b.Str) {
			return true, l.SetString(key, whole.Wrap(b.Type, b.Str), b.At)
		}
		return setExpiry(l, key, n, b, c)
	case List:
		e := listDiff(n, b, c)
		if e.DropHead == 0 && e.DropTail == 0 && e.Drop == nil && len(e.Set) == 0 && e.Head == nil && e.Tail == nil {
			if n.Kind != b.Kind {
				return false, nil
			}
			return setExpiry(l, key, n, b, c)
		}
		return true, l.EditList(key, e)
	case Hash, Set, ZSet:
		e := typedDiff(n, b, c)
		var incrs []fieldIncrement
		if b.Kind == Hash && c.incr {
			e.Set, incrs = hashIncrements(e.Set, c.from)
		}
		if e.Set == nil && e.Del == nil && e.Add == nil && e.Rem == nil && e.Incr == nil && incrs == nil {
			if n.Kind != b.Kind {
				return false, nil
			}
			return setExpiry(l, key, n, b, c)
		}
		if e.Set != nil || e.Del != nil || e.Add != nil || e.Rem != nil || e.Incr != nil || e.WithExpiry {
			if err := l.EditTyped(key, e); err != nil {
				return false, err
			}
		}
		for _, f := range incrs {
			done, err := increment(l, key, f.name, f.was, f.value)
			if err == nil && !done { // the value is set
				err = l.EditTyped(key, node.TypedEdit{Kind: record.KindHash, Set: [][]byte{f.name, f.value}})
			}
			if err != nil {
				return false, err
			}
		}
		return true, nil
	}
	return false, nil // Other: not modelled
}

// stringWas is the number a string the backend told of increments only
// held before them (see change), as its text: the base's ("0" where the
// backend did not hold the key).
func stringWas(b State, c change) ([]byte, bool) {
	if !c.incr || c.from == nil || b.Kind != String {
		return nil, false
	}
	if Kind(c.from.Kind) == None {
		return []byte("0"), true
	}
	return baseText(c.from)
}

// increment writes into the node, as an increment of key (field nil) or of
// a hash field, the change in the backend from number was to now: an
// integer increment where both are integers (INCRBY, HINCRBY), a float one
// otherwise (INCRBYFLOAT, HINCRBYFLOAT). It reports false, having written
// nothing, where the change or the node's value is no such increment.
func increment(l *node.LocalTx, key, field, was, now []byte) (bool, error) {
	if by, ok := intIncrement(was, now); ok {
		switch err := l.IncrBy(key, field, by); {
		case err == nil:
			return true, nil
		case !errors.Is(err, node.ErrNoIncrement):
			return false, err
		}
	}
	switch err := l.IncrByFloat(key, field, was, now); {
	case err == nil:
		return true, nil
	case !errors.Is(err, node.ErrNoIncrement):
		return false, err
	}
	return false, nil
}

// intIncrement is now's integer less was's, where both are integers and
// the difference does not overflow.
func intIncrement(was, now []byte) (int64, bool) {
	w, ok := canonicalInt(was)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(now), 10, 64)
	if err != nil {
		return 0, false
	}
	by := n - w
	if (w < 0) != (n < 0) && (by < 0) != (n < 0) { // overflowed
		return 0, false
	}
	return by, true
}

// fieldIncrement is a HINCRBY or HINCRBYFLOAT made in the backend: the
// field, the value the backend holds and the one it started from.
type fieldIncrement struct {
	name, value, was []byte
}

// hashIncrements splits set, the hash fields a take-in writes (name, value
// ...), into those still set and those that were HINCRBYs or
// HINCRBYFLOATs in the backend: a field whose value was a number in the
// base (0 for a field the base did not hold, or of a hash the backend did
// not hold) and is one now.
func hashIncrements(set [][]byte, from *base) (rest [][]byte, incrs []fieldIncrement) {
	if from == nil || (Kind(from.Kind) != Hash && Kind(from.Kind) != None) {
		return set, nil
	}
	for i := 0; i+1 < len(set); i += 2 {
		f, v := set[i], set[i+1]
		was, known := []byte("0"), true
		if h := xxhash.Sum64(f); Kind(from.Kind) == Hash {
			if _, in := part(from, h); in {
				was, known = fieldText(from, h)
			}
		}
		if _, num := longdouble.Parse(v); !known || !num {
			rest = append(rest, f, v)
			continue
		}
		incrs = append(incrs, fieldIncrement{name: f, value: v, was: was})
	}
	return rest, incrs
}

// expired reports whether a key's base had a deadline now passed, or about
// to: a key the backend no longer holds expired there.
func expired(from *base, now int64) bool {
	return from.At != 0 && from.At <= now+expiryLeeway
}

// expiryChanged reports whether the backend's deadline is a change to write
// into the node: the node holds another, and the backend's is not the one
// its base held (a deadline the node changed since is the node's).
func expiryChanged(n, b State, c change) bool {
	if n.Kind != b.Kind {
		return true
	}
	if c.from != nil && Kind(c.from.Kind) == b.Kind && c.from.At == b.At {
		return false
	}
	return n.At != b.At
}

func setExpiry(l *node.LocalTx, key []byte, n, b State, c change) (bool, error) {
	if !expiryChanged(n, b, c) {
		return false, nil
	}
	return true, l.SetExpiry(key, b.At)
}

// since is what the backend held of key hash h (its base), for a take-in
// against this run of the backend: a key the shadow does not hold was not
// there.
func (b *Bridge) since(h uint64) change {
	if e, ok := b.shadow.Get(h); ok {
		return change{from: &e}
	}
	return change{from: &base{}}
}

// baseScore is member m's score in a sorted set's base.
func baseScore(from *base, m []byte) (float64, bool) {
	if from == nil || Kind(from.Kind) != ZSet {
		return 0, false
	}
	bits, ok := part(from, xxhash.Sum64(m))
	return math.Float64frombits(bits), ok
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

// typedDiff is the field- or member-level write that takes the backend's
// change into the node's state n: the elements of b that are not as the
// base held them are written, and the node's elements b lacks are removed
// where the base held them (see takeIn; without a base, b's elements that
// differ from n's are written, and n's that b lacks removed unless
// additive).
func typedDiff(n, b State, c change) node.TypedEdit {
	e := node.TypedEdit{At: b.At, WithExpiry: expiryChanged(n, b, c)}
	if n.Kind != b.Kind {
		n = State{} // a key of another type is replaced as a whole
	}
	from := c.from
	if from != nil && Kind(from.Kind) != b.Kind {
		from = &base{} // the backend's key is new: all of it is its change
	}
	// changed: the backend's element name (its part p) is not as the base
	// held it.
	changed := func(name []byte, p uint64) bool {
		if from == nil {
			return true
		}
		q, ok := part(from, xxhash.Sum64(name))
		return !ok || q != p
	}
	// removed: the backend no longer holds what it held of name.
	removed := func(name string) bool {
		if from == nil {
			return !c.additive
		}
		_, ok := part(from, xxhash.Sum64String(name))
		return ok
	}
	if b.Kind == ZSet {
		e.Kind = record.KindZSet
		have := pairMap(n.Fields)
		for i := 0; i+1 < len(b.Fields); i += 2 {
			m, sc := b.Fields[i], b.Fields[i+1]
			old, ok := have[string(m)]
			delete(have, string(m))
			if ok && bytes.Equal(old, sc) && !c.incr || !changed(m, scoreBits(sc)) {
				continue
			}
			f, err := strconv.ParseFloat(string(sc), 64)
			if err != nil || math.IsNaN(f) {
				continue // not a score: the backend never holds one
			}
			if c.incr && from != nil {
				was, _ := baseScore(from, m) // 0 for a member the backend did not hold
				if by := f - was; !math.IsNaN(by) && !math.IsInf(by, 0) {
					e.Incr, e.By = append(e.Incr, m), append(e.By, by)
					continue
				}
			}
			e.Add, e.Scores = append(e.Add, m), append(e.Scores, f)
		}
		for m := range have {
			if removed(m) {
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
			old, ok := have[string(f)]
			delete(have, string(f))
			if ok && bytes.Equal(old, v) && !c.incr || !changed(f, valueHash(v)) {
				continue
			}
			e.Set = append(e.Set, f, v)
		}
		for f := range have {
			if removed(f) {
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
		if !have[string(m)] && changed(m, 0) {
			e.Add = append(e.Add, m)
		}
		delete(have, string(m))
	}
	for m := range have {
		if removed(m) {
			e.Rem = append(e.Rem, []byte(m))
		}
	}
	return e
}

// listEdit is the write that takes the node's list n to the backend's b as
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
func listEdit(n, b State, additive bool) node.ListEdit {
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

// listDiff is the list write that takes the backend's change into the
// node's list n. Without a base, or where the node's list is the base
// (nothing owed to the backend), it is listEdit's. Otherwise the backend's
// change is found against the base, as listEdit finds one against the node:
// the pushes at its ends are pushed at the node's, and each element it
// popped is removed from the node's list where the node still holds it:
// the base is aligned with the node's list by the longest run the two
// share, so that a peer's push at that end, not yet in the backend, stays
// beyond it and the element popped goes (a peer's pop of it already took
// it). A base and a backend list that share no run are taken as pushes
// only.
func listDiff(n, b State, c change) node.ListEdit {
	if c.from == nil {
		return listEdit(n, b, c.additive)
	}
	if n.Kind != List || Kind(c.from.Kind) != List {
		// A list replacing another type, or a new list in the backend
		// beside the node's, not yet written there.
		return listEdit(n, b, n.Kind == List)
	}
	have, was := listHashes(n.Members), baseListHashes(c.from)
	if slices.EqualFunc(have, was, bytes.Equal) {
		return listEdit(n, b, false)
	}
	now := listHashes(b.Members)
	i, k, run := commonRun(was, now) // the backend kept was[i:i+run]
	if run == 0 && len(was) > 0 && len(now) > 0 {
		return listEdit(n, b, true)
	}
	e := node.ListEdit{At: b.At, WithExpiry: expiryChanged(n, b, c)}
	at := alignLists(was, have) // where the node holds each of was
	for j := range was {
		if (j < i || j >= i+run) && at[j] >= 0 {
			e.Drop = append(e.Drop, at[j])
		}
	}
	if k > 0 {
		e.Head = b.Members[:k]
	}
	if k+run < len(b.Members) {
		e.Tail = b.Members[k+run:]
	}
	return e
}

// maxAlignDepth bounds alignLists' levels (at most 2^(depth+1)-1 runs).
const maxAlignDepth = 4

// alignLists maps each element of a to the element of b it stands for
// (its index, -1 for none): the longest run the two share, then on each
// side of it the longest run the parts on that side share, and so on, so
// that an edit in the middle of b (an insert, a removal) leaves the
// elements on both sides of it aligned. In-project: a few runs of
// commonRun, not a general diff.
func alignLists(a, b [][]byte) []int {
	at := make([]int, len(a))
	for i := range at {
		at[i] = -1
	}
	var walk func(a0, a1, b0, b1, depth int)
	walk = func(a0, a1, b0, b1, depth int) {
		if a0 >= a1 || b0 >= b1 || depth > maxAlignDepth {
			return
		}
		i, k, run := commonRun(a[a0:a1], b[b0:b1])
		if run == 0 {
			return
		}
		for j := range run {
			at[a0+i+j] = b0 + k + j
		}
		walk(a0, a0+i, b0, b0+k, depth+1)
		walk(a0+i+run, a1, b0+k+run, b1, depth+1)
	}
	walk(0, len(a), 0, len(b), 0)
	return at
}

// maxListWork bounds commonRun's comparisons; past it, lists are compared
// only at alignments a few elements from their ends' (pushes and pops of a
// few elements, what a notification's read usually finds).
const maxListWork = 1 << 18

// anchorShifts are the shifts (b's index less a's) that put one of a few
// of a's elements (at a quarter, half and three quarters of it) where b
// holds the same element, at most maxAnchorShifts.
func anchorShifts(a, b [][]byte) []int {
	const maxAnchorShifts = 24
	if len(a) == 0 {
		return nil
	}
	at := map[string][]int{} // a sampled element: its indexes in a
	for _, i := range []int{len(a) / 4, len(a) / 2, 3 * len(a) / 4} {
		at[string(a[i])] = append(at[string(a[i])], i)
	}
	var shifts []int
	for k, v := range b {
		for _, i := range at[string(v)] {
			if d := k - i; !slices.Contains(shifts, d) {
				shifts = append(shifts, d)
			}
		}
		if len(shifts) >= maxAnchorShifts {
			break
		}
	}
	return shifts
}

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
		// near the heads' and near the tails'; and those that put a few of
		// a's elements where b holds them (pushes of many elements at both
		// ends move a's middle by more than a few).
		w := max(1, maxListWork/(4*max(len(a), len(b))))
		for d := -w; d <= w; d++ {
			try(d)
			try(len(b) - len(a) + d)
		}
		for _, d := range anchorShifts(a, b) {
			try(d)
		}
		return i, k, run
	}
	for d := -len(a) + 1; d < len(b); d++ {
		try(d)
	}
	return i, k, run
}
