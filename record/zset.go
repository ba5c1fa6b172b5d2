package record

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/tidwall/btree"

	"github.com/redmesh/redmesh/hlc"
)

// A sorted set's member is an element of Scored, with a dot as a set's
// member has (add wins over a concurrent remove), whose Value is the score
// the adding write (ZADD) gave it: of two concurrent ZADDs of one member
// the higher dot's score shows. ZINCRBY adds to the writing node's count of
// the member in ScoreCounts, as HINCRBY does to a field's Counts, so that
// increments at different nodes add up and a ZREM or ZADD resets only the
// increments it observed. A count's Total and ResetTotal hold float64 bits;
// a member's score is its base plus, for each node in node order, that
// node's Total minus ResetTotal, so every node adds the same floats in the
// same order and gets the same bits.
//
// A member with no element but an increment a ZREM did not observe shows
// with base 0 plus that increment (as a hash field after HDEL ∥ HINCRBY).

// scoreLen is the bytes of a score in an element's Value and the encoding.
const scoreLen = 8

// ScoreValue is score as an element's Value holds it.
func ScoreValue(score float64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, scoreLen), math.Float64bits(score))
}

// scoreOf reads an element's score; a malformed one (which the decoder
// refuses) reads as 0.
func scoreOf(value []byte) float64 {
	if len(value) != scoreLen {
		return 0
	}
	return math.Float64frombits(binary.BigEndian.Uint64(value))
}

// ScoreOf is the score an element's Value holds (0 if it holds none).
func ScoreOf(value []byte) float64 { return scoreOf(value) }

// ScoreAdded is what member name's increments add to its base.
func (t *Typed) ScoreAdded(name []byte) float64 {
	if t == nil {
		return 0
	}
	add, _ := scoreAdded(t.scoreCountRun(name))
	return add
}

func floatOf(bits int64) float64 { return math.Float64frombits(uint64(bits)) }
func bitsOf(f float64) int64     { return int64(math.Float64bits(f)) }

// live reports whether a count holds an increment no reset observed. A
// reset that arrives before the count it reset holds no increment either.
func (c Count) live() bool { return c.Ver.Compare(c.ResetVer) > 0 }

// scoreAdded sums the live score counts of one member, in their order (node
// order), and reports whether any is live.
func scoreAdded(counts []Count) (float64, bool) {
	sum, live := 0.0, false
	for _, c := range counts {
		if c.live() {
			sum += floatOf(c.Total) - floatOf(c.ResetTotal)
			live = true
		}
	}
	return sum, live
}

// A large state keeps its score counts in a copy-on-write B-tree beside its
// elements (bigState.zcounts), ordered as a list's, so that a ZINCRBY into a
// large set costs O(log n) and not a copy of every count; zsum is their part
// of the digest, a sum of per-count hashes kept as they change.

func lessCount(a, b Count) bool { return compareCountKey(a, b) < 0 }

// countHash is one score count's share of a state's digest.
func countHash(c Count) uint64 { return mix64(xxhash.Sum64(appendScoreCount(nil, c))) }

// setScoreCount merges c into b's score counts, copying its name.
func (b *bigState) setScoreCount(c Count) {
	if b.zcounts == nil {
		b.zcounts = btree.NewBTreeGOptions(lessCount, btree.Options{NoLocks: true, Degree: treeDegree})
	}
	if old, ok := b.zcounts.Get(c); ok {
		m := mergeCount(old, c)
		if equalCount(old, m) {
			return
		}
		m.Name = old.Name
		b.zsum -= countHash(old)
		c = m
	} else {
		c.Name = bytes.Clone(c.Name)
	}
	b.zcounts.Set(c)
	b.zsum += countHash(c)
}

// scoreCountRun is member name's score counts in b, in node order.
func (b *bigState) scoreCountRun(name []byte) []Count {
	if b.zcounts == nil {
		return nil
	}
	var out []Count
	b.zcounts.Ascend(Count{Name: name}, func(c Count) bool {
		if !bytes.Equal(c.Name, name) {
			return false
		}
		out = append(out, c)
		return true
	})
	return out
}

// scoreCountRun is member name's score counts, in node order.
func (t *Typed) scoreCountRun(name []byte) []Count {
	switch {
	case t == nil:
		return nil
	case t.big != nil:
		return t.big.scoreCountRun(name)
	}
	return countRun(t.ScoreCounts, name)
}

// ScoreCountList is every score count, in order, whichever form holds
// them: for encodings and checkers. A large state's are listed anew.
func (t *Typed) ScoreCountList() []Count {
	switch {
	case t == nil:
		return nil
	case t.big != nil:
		if t.big.zcounts == nil {
			return nil
		}
		return t.big.zcounts.Items()
	}
	return t.ScoreCounts
}

func (t *Typed) scoreCountLen() int {
	switch {
	case t == nil:
		return 0
	case t.big != nil:
		if t.big.zcounts == nil {
			return 0
		}
		return t.big.zcounts.Len()
	}
	return len(t.ScoreCounts)
}

// scoreCountSum is the score counts' part of the digest.
func (t *Typed) scoreCountSum() uint64 {
	if t.big != nil {
		return t.big.zsum
	}
	var sum uint64
	for _, c := range t.ScoreCounts {
		sum += countHash(c)
	}
	return sum
}

// weight is the elements, traces and score counts a state holds: past
// bigElems it is held in the large form.
func (t *Typed) weight() int { return t.size() + t.scoreCountLen() }

// setScoreCounts makes t's score counts kept, t being a copy of in (Fresh).
func (t *Typed) setScoreCounts(in *Typed, kept []Count) {
	if in.big == nil {
		t.ScoreCounts = kept
		return
	}
	if t.big == in.big {
		t.big = in.bigCopy()
	}
	t.big.zcounts, t.big.zsum = nil, 0
	for _, c := range kept {
		t.big.setScoreCount(c)
	}
	t.big.scores = scoreIndex(t.big)
}

// scoreFrom is a member's score from its elements (name order, dot order)
// and counts.
func scoreFrom(run []Elem, counts []Count) (float64, bool) {
	add, live := scoreAdded(counts)
	if len(run) == 0 && !live {
		return 0, false
	}
	base := 0.0
	if len(run) > 0 {
		base = scoreOf(run[len(run)-1].Value)
	}
	if !live {
		return base, true
	}
	if s := base + add; !math.IsNaN(s) {
		return s, true
	}
	return base, true
}

// Score is sorted-set member name's score, if it is a member.
func (t *Typed) Score(name []byte) (float64, bool) {
	if t == nil {
		return 0, false
	}
	return scoreFrom(t.run(listScored, name), t.scoreCountRun(name))
}

// countedScores lists, in name order, the members that have a live count but
// no element.
func (t *Typed) countedScores() [][]byte {
	var out [][]byte
	counts := t.ScoreCountList()
	for i := 0; i < len(counts); {
		name := counts[i].Name
		j, live := i, false
		for j < len(counts) && bytes.Equal(counts[j].Name, name) {
			live = live || counts[j].live()
			j++
		}
		if live && len(t.run(listScored, name)) == 0 {
			out = append(out, name)
		}
		i = j
	}
	return out
}

// ZLen is the number of members of a sorted set.
func (t *Typed) ZLen() int {
	if t == nil {
		return 0
	}
	if t.big != nil && t.big.scores != nil {
		return t.big.scores.Len()
	}
	n := len(t.countedScores())
	t.each(listScored, func([]Elem) bool { n++; return true })
	return n
}

// ZEntry is a sorted set's member and its score.
type ZEntry struct {
	Name  []byte
	Score float64
}

// CompareZ orders members as Redis does: by score, then by name.
func CompareZ(a, b ZEntry) int {
	switch {
	case a.Score < b.Score:
		return -1
	case a.Score > b.Score:
		return 1
	}
	return bytes.Compare(a.Name, b.Name)
}

// eachScore calls fn with each member and its score, in name order.
func (t *Typed) eachScore(fn func(ZEntry) bool) {
	if t == nil {
		return
	}
	counted := t.countedScores()
	emit := func(name []byte) bool {
		s, _ := t.Score(name)
		return fn(ZEntry{Name: name, Score: s})
	}
	ok := true
	t.each(listScored, func(run []Elem) bool {
		name := run[0].Name
		for len(counted) > 0 && bytes.Compare(counted[0], name) < 0 {
			if ok = emit(counted[0]); !ok {
				return false
			}
			counted = counted[1:]
		}
		s, _ := scoreFrom(run, t.scoreCountRun(name))
		ok = fn(ZEntry{Name: name, Score: s})
		return ok
	})
	for _, name := range counted {
		if !ok || !emit(name) {
			return
		}
	}
}

// ZView is a sorted set's members in score order, by rank: a large set's
// score index (O(log n) a step), or a small set's members sorted on read.
type ZView struct {
	small []ZEntry
	tree  *btree.BTreeG[scoreEntry]
}

// ZView returns t's members in score order.
func (t *Typed) ZView() ZView {
	if t != nil && t.big != nil && t.big.scores != nil {
		return ZView{tree: t.big.scores}
	}
	var out []ZEntry
	t.eachScore(func(e ZEntry) bool { out = append(out, e); return true })
	slices.SortFunc(out, CompareZ)
	return ZView{small: out}
}

// Len is the number of members.
func (v ZView) Len() int {
	if v.tree != nil {
		return v.tree.Len()
	}
	return len(v.small)
}

// At is the member of rank i, 0 <= i < Len.
func (v ZView) At(i int) ZEntry {
	if v.tree != nil {
		e, _ := v.tree.GetAt(i)
		return e.entry()
	}
	return v.small[i]
}

// Search is the smallest rank whose member satisfies f (Len if none), for an
// f false below some rank and true from it: O(log² n) on a large set, which
// the tree's ranks allow without a rank-of-key lookup.
func (v ZView) Search(f func(ZEntry) bool) int {
	return sort.Search(v.Len(), func(i int) bool { return f(v.At(i)) })
}

// Ascend calls fn with the members from rank i up, until it returns false.
func (v ZView) Ascend(i int, fn func(ZEntry) bool) {
	if i < 0 || i >= v.Len() {
		return
	}
	if v.tree != nil {
		pivot, _ := v.tree.GetAt(i)
		v.tree.Ascend(pivot, func(e scoreEntry) bool { return fn(e.entry()) })
		return
	}
	for _, e := range v.small[i:] {
		if !fn(e) {
			return
		}
	}
}

// Descend calls fn with the members from rank i down, until it returns
// false.
func (v ZView) Descend(i int, fn func(ZEntry) bool) {
	if i < 0 || i >= v.Len() {
		return
	}
	if v.tree != nil {
		pivot, _ := v.tree.GetAt(i)
		v.tree.Descend(pivot, func(e scoreEntry) bool { return fn(e.entry()) })
		return
	}
	for j := i; j >= 0; j-- {
		if !fn(v.small[j]) {
			return
		}
	}
}

// Rank is member name's rank in score order.
func (t *Typed) Rank(v ZView, name []byte) (int, bool) {
	s, ok := t.Score(name)
	if !ok {
		return 0, false
	}
	e := ZEntry{Name: name, Score: s}
	return v.Search(func(x ZEntry) bool { return CompareZ(x, e) >= 0 }), true
}

// scoreEntry is a member in a large set's score index.
type scoreEntry struct {
	score float64
	name  string
}

// perScored, perScoreEntry and perScoreCount are about the memory a member's
// item in a compacted tree (40 bytes, its node's share, and its allocation's
// rounding beyond its name and score), its index entry (24 bytes and its
// node's share; its name is its element's) and a score count hold: a sorted
// set of 300,000 loaded 100 members a write held 121.7 bytes a member.
const (
	perScored     = 58
	perScoreEntry = 36
	perScoreCount = 140
)

// zsetMemSize is about the memory b's sorted set holds beyond its members'
// names and scores (bigState.bytes).
func (b *bigState) zsetMemSize() int64 {
	n := int64(b.lists[listScored].Len()) * perScored
	if b.scores != nil {
		n += int64(b.scores.Len()) * perScoreEntry
	}
	if b.zcounts != nil {
		n += int64(b.zcounts.Len()) * perScoreCount
	}
	return n
}

func lessScore(a, b scoreEntry) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return a.name < b.name
}

func (e scoreEntry) entry() ZEntry {
	return ZEntry{Name: unsafe.Slice(unsafe.StringData(e.name), len(e.name)), Score: e.score}
}

// scoreIndex builds the score index of a large state's members, b holding
// its elements and score counts; nil if it has none. An entry's name is its
// element's, shared with the tree that holds it.
func scoreIndex(b *bigState) *btree.BTreeG[scoreEntry] {
	if b.zcounts == nil && b.lists[listScored].Len() == 0 {
		return nil
	}
	idx := btree.NewBTreeGOptions(lessScore, btree.Options{NoLocks: true, Degree: treeDegree})
	b.each(listScored, func(run []Elem) bool {
		s, _ := scoreFrom(run, b.scoreCountRun(run[0].Name))
		idx.Set(scoreEntry{score: s, name: unsafe.String(unsafe.SliceData(run[0].Name), len(run[0].Name))})
		return true
	})
	if b.zcounts == nil {
		return idx
	}
	var counted []Count // of a member with no element
	b.zcounts.Scan(func(c Count) bool {
		if len(counted) > 0 && !bytes.Equal(counted[0].Name, c.Name) {
			b.indexCounted(idx, counted)
			counted = counted[:0]
		}
		counted = append(counted, c)
		return true
	})
	b.indexCounted(idx, counted)
	return idx
}

// indexCounted adds to idx the member whose counts are counts (one name),
// if it has no element and its counts make it a member.
func (b *bigState) indexCounted(idx *btree.BTreeG[scoreEntry], counts []Count) {
	if len(counts) == 0 || b.named(listScored, counts[0].Name, nil) {
		return
	}
	if s, ok := scoreFrom(nil, counts); ok {
		idx.Set(scoreEntry{score: s, name: string(counts[0].Name)})
	}
}

// touchedScore is a member a merge touches, with its score before.
type touchedScore struct {
	name   []byte
	score  float64
	had    bool
	counts []Count // its score counts before, where the merge of one element reads them
}

// touchedScores lists the members other touches (elements, traces, counts)
// with their scores in t, for reindexScores; nil when t keeps no score
// index (reindexScores builds it whole).
func (t *Typed) touchedScores(other *Typed, h *hints) []touchedScore {
	if t.big == nil || t.big.scores == nil {
		return nil
	}
	var names [][]byte
	for _, which := range []int{listScored, listRemoved} {
		other.each(which, func(run []Elem) bool {
			names = append(names, run[0].Name)
			return true
		})
	}
	for _, c := range other.ScoreCountList() {
		names = append(names, c.Name)
	}
	slices.SortFunc(names, bytes.Compare)
	names = slices.CompactFunc(names, bytes.Equal)
	out := make([]touchedScore, len(names))
	for i, name := range names {
		out[i].name = name
		out[i].score, out[i].had = scoreFrom(t.big.run(listScored, name, h), t.big.scoreCountRun(name))
	}
	return out
}

// reindexScores brings m's score index (m being base merged with other, in
// the large form) up to date: the members other touched (olds, with their
// scores in base), re-scored.
func (m *Typed) reindexScores(base *Typed, olds []touchedScore, h *hints) {
	if base.big == nil || base.big.scores == nil {
		m.big.scores = scoreIndex(m.big)
		return
	}
	idx := m.big.scores // base's, copied by bigCopy or taken over in place
	for _, t := range olds {
		m.big.rescore(idx, t, m.big.run(listScored, t.name, h))
	}
}

// rescore moves member t.name in the score index idx from its score before
// (t) to its score now, run being its elements now.
func (b *bigState) rescore(idx *btree.BTreeG[scoreEntry], t touchedScore, run []Elem) {
	name := t.name
	s, has := scoreFrom(run, b.scoreCountRun(name))
	if t.had == has && (!has || math.Float64bits(t.score) == math.Float64bits(s)) {
		return // a trace of another type's element, or a score unchanged
	}
	if t.had {
		b.deleteScore(idx, scoreEntry{score: t.score, name: unsafe.String(unsafe.SliceData(name), len(name))})
	}
	if has {
		e := scoreEntry{score: s, name: string(name)}
		if len(run) > 0 { // the element's name, shared with its tree
			e.name = unsafe.String(unsafe.SliceData(run[0].Name), len(run[0].Name))
		}
		b.setScore(idx, e)
	}
}

// ScoreCount returns node's count of member name's increments.
func (t *Typed) ScoreCount(name []byte, node NodeID) Count {
	if t != nil {
		for _, c := range t.scoreCountRun(name) {
			if c.Node == node {
				return c
			}
		}
	}
	return Count{Name: name, Node: node}
}

// scoreResets is member name's counts as a write that overwrites or removes
// it records them.
func (t *Typed) scoreResets(name []byte) []Count {
	if t == nil {
		return nil
	}
	return allResets(t.scoreCountRun(name))
}

// ScoredElements lists a sorted set's member elements with their dots and
// score values, in order, for checkers. They are read-only.
func (t *Typed) ScoredElements() []Elem {
	var out []Elem
	t.each(listScored, func(run []Elem) bool {
		out = append(out, run...)
		return true
	})
	return out
}

// SetScore writes sorted-set member name with score: the dots it had are
// removed and its increments reset. It returns the member's new dot.
func (op *TypedOp) SetScore(name []byte, score float64) (Version, error) {
	t := op.Rec.Typed
	if i := op.ownElem(&t.Scored, name); i >= 0 {
		t.Scored[i].Value = ScoreValue(score)
		op.dropOwnIncrements(name)
		return t.Scored[i].Dot, nil
	}
	d, err := op.dot()
	if err != nil {
		return Version{}, err
	}
	op.traces(op.observed(listScored, name))
	t.ScoreCounts = append(t.ScoreCounts, op.Cur.Typed.scoreResets(name)...)
	op.addElem(&t.Scored, Elem{Name: name, Dot: d, Value: ScoreValue(score)})
	return d, nil
}

// dropOwnIncrements forgets the increments of member name this write made,
// which a later step of the same write overrides.
func (op *TypedOp) dropOwnIncrements(name []byte) {
	t := op.Rec.Typed
	t.ScoreCounts = slices.DeleteFunc(t.ScoreCounts, func(c Count) bool {
		return bytes.Equal(c.Name, name) && c.Ver == op.V
	})
}

// RemScored removes sorted-set member name as the writer sees it.
func (op *TypedOp) RemScored(name []byte) {
	t := op.Rec.Typed
	if i := op.ownElem(&t.Scored, name); i >= 0 {
		op.deleteOwn(&t.Scored, i)
	}
	op.dropOwnIncrements(name)
	op.traces(op.observed(listScored, name))
	t.ScoreCounts = append(t.ScoreCounts, op.Cur.Typed.scoreResets(name)...)
}

// IncrScore adds by to the writer's count of member name's increments (see
// TypedOp.IncrCounter). The count's total must stay finite: a caller writes
// an infinite result with SetScore instead.
func (op *TypedOp) IncrScore(name []byte, by float64) {
	id := op.Counter
	if id == 0 {
		id = op.V.Node
	}
	c := op.Cur.Typed.ScoreCount(name, id)
	if c.Ver.IsZero() {
		c.Start = op.V.TS // a new run of counts (see Count.Start)
	}
	if !op.Live {
		c.ResetVer, c.ResetTotal = c.Ver, c.Total
	}
	c.Name, c.Ver, c.Total = name, op.V, bitsOf(floatOf(c.Total)+by)
	op.Rec.Typed.ScoreCounts = append(op.Rec.Typed.ScoreCounts, c)
}

// OwnScoreTotal is the writer's count of member name as it stands before
// this write: what IncrScore adds to.
func (op *TypedOp) OwnScoreTotal(name []byte) float64 {
	id := op.Counter
	if id == 0 {
		id = op.V.Node
	}
	return floatOf(op.Cur.Typed.ScoreCount(name, id).Total)
}

// ScoreAfter is member name's score once this write applies, for a reply.
func (op *TypedOp) ScoreAfter(name []byte) (float64, bool) {
	after := mergeTyped(op.Cur.Typed.scoreSlice(name), op.Rec.Typed.scoreSlice(name))
	if after == nil {
		return 0, false
	}
	return scoreFrom(after.Scored, after.ScoreCounts)
}

// scoreSlice is the part of t about member name, normalized: its elements,
// the traces of them, and its counts. t may be a write still being built,
// not yet in order.
func (t *Typed) scoreSlice(name []byte) *Typed {
	if t == nil {
		return nil
	}
	s := &Typed{}
	named := func(e Elem) bool { return bytes.Equal(e.Name, name) }
	if t.big != nil {
		s.Scored = t.big.run(listScored, name, nil)
		s.Removed = t.big.run(listRemoved, name, nil)
	} else {
		for _, e := range t.Scored {
			if named(e) {
				s.Scored = append(s.Scored, e)
			}
		}
		for _, e := range t.Removed {
			if named(e) {
				s.Removed = append(s.Removed, e)
			}
		}
	}
	if t.big != nil {
		s.ScoreCounts = t.scoreCountRun(name)
	} else {
		for _, c := range t.ScoreCounts {
			if bytes.Equal(c.Name, name) {
				s.ScoreCounts = append(s.ScoreCounts, c)
			}
		}
	}
	s.Normalize()
	return s
}

// allScoreResets is every score count reset, for a write that starts the
// key afresh.
func (t *Typed) allScoreResets() []Count {
	if t == nil {
		return nil
	}
	return allResets(t.ScoreCountList())
}

// freshScoreCounts is Fresh's rule for counts (see freshTyped) applied to a
// peer's score counts: one that adds something, with its increments and
// observed reset up to stable, of a member local holds no count of that
// node for, went with its key and must not add again.
func freshScoreCounts(local *Typed, in []Count, stable hlc.Timestamp) ([]Count, bool) {
	var kept []Count
	dropped := false
	for i, n := range in {
		have := local.ScoreCount(n.Name, n.Node)
		if n.Total != n.ResetTotal && n.Ver.TS <= stable && n.ResetVer.TS <= stable &&
			have.Ver.IsZero() && have.ResetVer.IsZero() {
			if !dropped {
				kept, dropped = append(make([]Count, 0, len(in)), in[:i]...), true
			}
			continue
		}
		if dropped {
			kept = append(kept, n)
		}
	}
	if dropped && len(kept) == 0 {
		kept = nil
	}
	return kept, dropped
}

// zset encoding (see typed_encoding.go).

const (
	minScoreCountLen = 1 + 8 + 1 + versionLen + 8 + versionLen + 8
	minScoredLen     = 1 + versionLen + scoreLen
)

func appendScoreCounts(dst []byte, counts []Count, sp *spiller) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(counts)))
	for _, c := range counts {
		dst = appendScoreCount(dst, c)
		dst = sp.check(dst)
	}
	return dst
}

func appendScoreCount(dst []byte, c Count) []byte {
	dst = appendBytes(dst, c.Name)
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Node))
	dst = binary.AppendUvarint(dst, uint64(c.Start))
	dst = appendVersion(dst, c.Ver)
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Total))
	dst = appendVersion(dst, c.ResetVer)
	return binary.BigEndian.AppendUint64(dst, uint64(c.ResetTotal))
}

func appendZSet(dst []byte, t *Typed, sp *spiller) []byte {
	dst = appendScoreCounts(dst, t.ScoreCountList(), sp)
	dst = binary.AppendUvarint(dst, uint64(t.count(listScored)))
	t.each(listScored, func(run []Elem) bool {
		for _, e := range run {
			dst = appendBytes(dst, e.Name)
			dst = appendVersion(dst, e.Dot)
			dst = append(dst, e.Value...)
			dst = sp.check(dst)
		}
		return true
	})
	return dst
}

func (r *typedReader) u64(what string) uint64 {
	if len(r.b) < 8 {
		r.fail("truncated " + what)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// zset reads a sorted set's section: counts in order, with finite totals;
// members in order, with scores that are numbers.
func (r *typedReader) zset(t *Typed) {
	if n := r.count("score counts", minScoreCountLen); n > 0 {
		t.ScoreCounts = make([]Count, n)
		for i := range t.ScoreCounts {
			c := &t.ScoreCounts[i]
			c.Name = r.bytes("score count name")
			c.Node = NodeID(r.u64("score count node"))
			c.Start = hlc.Timestamp(r.uvarint("score count start"))
			c.Ver = r.version("score count version")
			c.Total = int64(r.u64("score count total"))
			c.ResetVer = r.version("score reset version")
			c.ResetTotal = int64(r.u64("score reset total"))
			if r.err != nil {
				return
			}
			if math.IsInf(floatOf(c.Total), 0) || math.IsNaN(floatOf(c.Total)) ||
				math.IsInf(floatOf(c.ResetTotal), 0) || math.IsNaN(floatOf(c.ResetTotal)) {
				r.fail("score count not finite")
				return
			}
			if i > 0 && compareCountKey(t.ScoreCounts[i-1], *c) >= 0 {
				r.fail("score counts out of order")
				return
			}
		}
	}
	n := r.count("sorted set members", minScoredLen)
	if n == 0 || r.err != nil {
		return
	}
	t.Scored = make([]Elem, n)
	for i := range t.Scored {
		e := &t.Scored[i]
		e.Name = r.bytes("member")
		e.Dot = r.version("member dot")
		if r.err != nil {
			return
		}
		if len(r.b) < scoreLen {
			r.fail("truncated score")
			return
		}
		e.Value, r.b = r.b[:scoreLen:scoreLen], r.b[scoreLen:]
		if math.IsNaN(scoreOf(e.Value)) {
			r.fail("score is not a number")
			return
		}
		if i > 0 && compareND(t.Scored[i-1], *e) >= 0 {
			r.fail("sorted set members out of order")
			return
		}
	}
}
