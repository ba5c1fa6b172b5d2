package record

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/tidwall/btree"
)

// bigState is the large form of a typed state's elements: fields, members
// and traces in B-trees ordered by name then dot. A merge copies the trees in
// O(1) and changes only the paths it touches (copy on write), so the state
// it started from stays as it was for whoever holds it. github.com/tidwall/
// btree provides that copy; no B-tree of the standard library does.
type bigState struct {
	lists [5]*btree.BTreeG[item] // by list index: fields, members, traces, scored (list: empty)
	names [5]int                 // distinct names in each list but the traces
	// listed holds a list's elements, packed in runs (list_runs.go).
	listed runTree
	// scores orders a sorted set's members by score, and zcounts holds its
	// score counts, zsum their part of the digest (zset.go); nil when the
	// state has none.
	scores  *btree.BTreeG[scoreEntry]
	zcounts *btree.BTreeG[Count]
	zsum    uint64
	// counts holds the counters' counts (Typed.Counts in the small form),
	// so that an HINCRBY into a large hash costs O(log n), and csum their
	// part of the digest (countDigest summed); nil when the state has none.
	counts *btree.BTreeG[Count]
	csum   uint64
	cbytes int64  // about the memory the counts hold (countMem summed)
	sum    uint64 // the elements' part of the digest (elemHash summed)
	bytes  int64  // of the items' names and values
	// loose counts the elements and traces added since the trees were
	// last compacted (see compact).
	loose int
	// prefixes are the prefixes each list's names shared when its tree was
	// built, which its items' pfx follow (see item); never changed for the
	// trees' life, so shared by every state over them.
	prefixes *[numLists]string
	// owner is the writer that built this state and may change its trees
	// in place (see Owner); nil for a state anyone may hold.
	owner *Owner
	// adopted: the trees are a published state's, taken over in place by a
	// later step of the same line (see Owner.line): every change to them
	// is journaled, so that the step can be undone; taken holds their
	// headers for the undo (the list's as of its last change).
	adopted bool
	taken   *adoptedTrees
	// frozen is set (atomically, under the writer's lock) once a reader
	// holds the state: no later step takes it over (see Freeze).
	frozen uint32
}

// Owner is a writer's mark on the large states it builds: a merge under the
// same Owner changes such a state's trees in place instead of copying the
// paths it touches, which is where a write to a large key spends its time
// and allocations. Only the nodes the state still shares with states others
// hold (the keyspace's, a reader's) are copied. The writer must use a fresh
// Owner once the states it built may be seen by anyone else (once it
// publishes them), and must not read a state it merged into again: the
// merge's result replaces it.
//
// Owners of one Line (a writer's steps, one Owner each) go further: a state
// a step published, that no reader has frozen since (Freeze), is taken over
// by the next step's merge of a command's write (MergePublished) rather
// than copied, so that a stream of steps writing into one large key copies no
// path at all, where each step's first write into it copied two of about
// 1.5 KB a node. The trees such a step changes are the published state's,
// so every change is journaled (Undo puts them back) and the published
// state's header keeps its own copy of the trees' roots and counts (a
// list's root node, which counts its elements), which readers of its
// header (a key's type, length, versions) read while the step runs;
// reading its elements (a list's ListView too) needs Freeze first.
type Owner struct {
	line    *Line
	journal []undoOp
	adopted []adoption
}

// Line is the identity a writer's Owners share, one per step (see Owner).
// Its steps run one after another, so it keeps the last step's journal and
// adoptions, emptied, for the next: a step taking a large state over then
// journals into room it already has, where each grew its own (the growth
// of a journal of 136-byte entries was a fifth of a single write's time).
type Line struct {
	journal []undoOp
	adopted []adoption
}

// maxSpareJournal bounds the journal a Line keeps between steps, so that
// one step's large write does not hold its room for good.
const maxSpareJournal = 1 << 10

// NewOwner is a fresh Owner of line (nil: of none, no state is taken over).
func NewOwner(line *Line) *Owner {
	o := &Owner{line: line}
	if line != nil {
		o.journal, o.adopted = line.journal, line.adopted
		line.journal, line.adopted = nil, nil
	}
	return o
}

// done empties o's journal and adoptions, handing their room back to its
// line for the next step's Owner.
func (o *Owner) done() {
	if o.line != nil && cap(o.journal) <= maxSpareJournal {
		clear(o.journal) // the items and states they hold
		clear(o.adopted)
		o.line.journal, o.line.adopted = o.journal[:0], o.adopted[:0]
	}
	o.journal, o.adopted = nil, nil
}

// adoption is a published state (pub) a step took over, and the state it
// made of it, whose trees are pub's, changed in place.
type adoption struct {
	pub   *Typed
	trees *adoptedTrees
}

// undoOp is a change made in place to an adopted tree: an item inserted,
// replaced or deleted, in an element tree, the score index or the list's
// runs (list: the adoption's, whose list header the undo changes). it is
// what the undo needs: the item inserted, or the one replaced or deleted.
type undoOp struct {
	tree   *btree.BTreeG[item]
	scores *btree.BTreeG[scoreEntry]
	list   *adoptedTrees
	it     item
	se     scoreEntry
	op     uint8
}

const (
	undoInserted = iota
	undoReplaced
	undoDeleted
)

// Undo puts the trees the step's adoptions changed back as they were, and
// returns the published states it took over, each with a state to put in
// its place: pub's header over the trees as they now are (pub's own roots
// may be stale once a node split or merged in place). The owner is not to
// be used after.
func (o *Owner) Undo() (pubs []*Typed, repaired []*Typed) {
	for i := len(o.journal) - 1; i >= 0; i-- {
		u := &o.journal[i]
		switch {
		case u.list != nil && u.op == undoInserted:
			u.list.listed.delete(u.it.elem().Name, u.it.dot)
		case u.list != nil:
			u.list.listed.set(u.it.elem())
		case u.scores != nil && u.op == undoInserted:
			u.scores.Delete(u.se)
		case u.scores != nil:
			u.scores.Set(u.se)
		case u.op == undoInserted:
			u.tree.Delete(u.it)
		default: // the item replaced or deleted
			u.tree.Set(u.it)
		}
	}
	pubs, repaired = o.repaired()
	o.done()
	return pubs, repaired
}

// repaired is Undo's states put back: each published state o took over,
// with pub's header over the trees as they now are.
func (o *Owner) repaired() (pubs []*Typed, repaired []*Typed) {
	for _, a := range o.adopted {
		r := *a.pub
		b := *a.pub.big
		b.frozen = 0
		for i := range b.lists {
			b.lists[i] = &a.trees.lists[i]
		}
		if b.scores != nil {
			b.scores = &a.trees.scores
		}
		b.listed = a.trees.listed
		r.big = &b
		pubs, repaired = append(pubs, a.pub), append(repaired, &r)
	}
	return pubs, repaired
}

// Adoptions is the number of published states o took over so far.
func (o *Owner) Adoptions() int {
	if o == nil {
		return 0
	}
	return len(o.adopted)
}

// Release lets go of o's journal once its step is published: the states
// it built keep o as their mark, and must not keep what the journal holds
// (the states taken over, and through theirs, every one before).
func (o *Owner) Release() {
	if o != nil {
		o.done()
	}
}

// Mutable reports whether a later step of its writer may still change t's
// trees in place: a reader other than that writer must Freeze t (under the
// writer's lock) before reading its elements. Its header (kind, versions,
// length) may be read at any time.
func (t *Typed) Mutable() bool {
	return t != nil && t.big != nil && t.big.adoptable(t) && atomic.LoadUint32(&t.big.frozen) == 0
}

// Freeze makes t a state no later step changes: called under its writer's
// lock, so that no step is changing it meanwhile.
func (t *Typed) Freeze() {
	if t != nil && t.big != nil && atomic.LoadUint32(&t.big.frozen) == 0 {
		atomic.StoreUint32(&t.big.frozen, 1)
	}
}

// adoptable reports whether b, t's large form, is of the shape a step may
// take over: elements and traces, a list's runs and the score index, whose
// changes are journaled (not counts, which are not), from a writer with a
// line.
func (b *bigState) adoptable(t *Typed) bool {
	return b.owner != nil && b.owner.line != nil && b.counts == nil && b.zcounts == nil &&
		t.HLL == nil && !t.KindVersion.IsZero()
}

// adopt is base's state for o to change in place: a new header over trees
// that are base's, each tree's own header copied so that base's stays as
// it was for those reading it while o's step runs. A list's header is its
// root node (which counts the elements below it), so that is copied: the
// nodes under it are changed in place.
func (b *bigState) adopt(base *Typed, o *Owner) *bigState {
	x := &adoptedState{c: *b}
	c, trees := &x.c, &x.trees
	c.frozen = 0
	for i := range b.lists {
		trees.lists[i] = *b.lists[i]
		c.lists[i] = &trees.lists[i]
	}
	if b.scores != nil {
		trees.scores = *b.scores
		c.scores = &trees.scores
	}
	if r := b.listed.root; r != nil {
		c.listed.ensureID()
		root := *r
		root.id = c.listed.id
		if r.kids != nil {
			root.kids = slices.Clone(r.kids)
		}
		c.listed.root = &root
	}
	trees.listed = c.listed
	c.owner, c.adopted, c.taken = o, true, trees
	o.adopted = append(o.adopted, adoption{pub: base, trees: trees})
	return c
}

// adoptedState is an adopted state and its trees' headers, in one
// allocation.
type adoptedState struct {
	c     bigState
	trees adoptedTrees
}

// adoptedTrees is an adopted state's trees' headers.
type adoptedTrees struct {
	lists  [5]btree.BTreeG[item]
	scores btree.BTreeG[scoreEntry]
	listed runTree
}

// setListed and deleteListed change the list's runs, journaling the change
// if b is adopted (the element's name, and what it replaced or deleted,
// copied: the delta's buffers may not outlive the step).
func (b *bigState) setListed(e Elem) (old Elem, replaced bool) {
	old, replaced = b.listed.set(e)
	if b.adopted {
		u := undoOp{list: b.taken, op: undoInserted}
		if replaced {
			u.it, u.op = newItem(old), undoReplaced
		} else {
			u.it = newItem(Elem{Name: e.Name, Dot: e.Dot})
		}
		b.owner.journal = append(b.owner.journal, u)
		b.taken.listed = b.listed
	}
	return old, replaced
}

func (b *bigState) deleteListed(name []byte, dot Version) (old Elem, ok bool) {
	old, ok = b.listed.delete(name, dot)
	if ok && b.adopted {
		b.owner.journal = append(b.owner.journal, undoOp{list: b.taken, it: newItem(old), op: undoDeleted})
		b.taken.listed = b.listed
	}
	return old, ok
}

// ownList gives an adopted b a list of its own, sharing no node it may
// change in place with the header Undo changes (each copies on write).
func (b *bigState) ownList() {
	if b.adopted && b.taken != nil {
		b.listed = b.taken.listed.copy()
	}
}

// setItem puts it in list which, journaling the change if b is adopted.
func (b *bigState) setItem(which int, it item, h *hints) (old item, replaced bool) {
	tree := b.lists[which]
	old, replaced = tree.SetHint(it, h.at(which))
	if b.adopted {
		u := undoOp{tree: tree, it: it, op: undoInserted}
		if replaced {
			u.it, u.op = old, undoReplaced
		}
		b.owner.journal = append(b.owner.journal, u)
	}
	return old, replaced
}

// deleteItem deletes k from list which, journaling the change if b is
// adopted.
func (b *bigState) deleteItem(which int, k item, h *hints) (old item, ok bool) {
	tree := b.lists[which]
	old, ok = tree.DeleteHint(k, h.at(which))
	if ok && b.adopted {
		b.owner.journal = append(b.owner.journal, undoOp{tree: tree, it: old, op: undoDeleted})
	}
	return old, ok
}

// setScore and deleteScore change the score index idx, journaling the
// change if b is adopted.
func (b *bigState) setScore(idx *btree.BTreeG[scoreEntry], e scoreEntry) {
	if _, replaced := idx.Set(e); b.adopted && !replaced {
		b.owner.journal = append(b.owner.journal, undoOp{scores: idx, se: e, op: undoInserted})
	}
}

func (b *bigState) deleteScore(idx *btree.BTreeG[scoreEntry], e scoreEntry) {
	if old, ok := idx.Delete(e); b.adopted && ok {
		b.owner.journal = append(b.owner.journal, undoOp{scores: idx, se: old, op: undoDeleted})
	}
}

// MergeOwned is MergeInto for the writer that owns o (see Owner).
func MergeOwned(local, incoming Record, o *Owner) (Record, bool) {
	return mergeOwned(local, incoming, o, false)
}

// MergePublished is MergeOwned of local, the record the keyspace holds
// (published): a large state an earlier step of o's line built, that no
// reader froze, may be taken over rather than copied (see Owner).
func MergePublished(local, incoming Record, o *Owner) (Record, bool) {
	return mergeOwned(local, incoming, o, true)
}

func mergeOwned(local, incoming Record, o *Owner, published bool) (Record, bool) {
	was := printOwned(local.Typed, o)
	m := Record{
		Value:  mergeValue(local.Value, incoming.Value),
		Expiry: mergeExpiry(local.Expiry, incoming.Expiry),
		Typed:  mergeTypedWith(local.Typed, incoming.Typed, o, published, false),
	}
	if m.Typed.empty() {
		m.Typed = nil
	}
	return m, changedFrom(m, local, was)
}

// ownedPrint is what tells a change of t, whose large form o's merges may
// change in place (the header mergeTypedWith then hands on): its size,
// count of counts and digest; ok is false for any other state.
type ownedPrint struct {
	size, counts int
	digest       uint64
	ok           bool
}

func printOwned(t *Typed, o *Owner) ownedPrint {
	if o == nil || t == nil || t.big == nil || t.big.owner != o {
		return ownedPrint{}
	}
	return ownedPrint{size: t.size(), counts: t.countLen(), digest: t.digest(), ok: true}
}

// changedFrom reports whether the merge m of local changed it, was being
// local's print before the merge: a large form changed in place is
// local's too, so Equal alone would find the two the same.
func changedFrom(m, local Record, was ownedPrint) bool {
	if !Equal(m, local) {
		return true
	}
	if !was.ok || m.Typed == nil || local.Typed == nil || m.Typed.big != local.Typed.big {
		return false
	}
	was.ok = false
	return was != ownedPrint{size: m.Typed.size(), counts: m.Typed.countLen(), digest: m.Typed.digest()}
}

// ownTrees gives b trees of its own in place of those it shares with the
// state it adopted (copies in O(1), copy on write): what Undo puts back is
// then no longer b's.
func (b *bigState) ownTrees() {
	for i, l := range b.lists {
		b.lists[i] = l.Copy()
	}
	if b.scores != nil {
		b.scores = b.scores.Copy()
	}
	b.ownList()
	b.adopted, b.taken = false, nil
}

// bigElems is the number of elements and traces from which a state is held
// in B-trees. Below it, sorted slices are smaller and as fast; Redis too
// keeps hashes and sets of up to 128 elements in one compact block.
const bigElems = 256

// item is an element as a tree holds it: its name and value in one string
// (the name, then the value; nlen is the name's length) and its dot: 40
// bytes and one allocation, where an Elem with copied slices takes 64 and
// two (a sorted set's 8-byte score was an allocation of its own).
//
// pfx is the four bytes of the name past the prefix every name of its tree
// shared when the tree was built (bigState.prefixes), big-endian, zero if
// the name lacks that prefix: two items whose pfx differ and are both set
// compare by them, without reading their names, which live outside the
// tree's nodes (a cache miss each in a large tree). It takes the 4 bytes
// the struct's alignment left unused.
type item struct {
	kv   string
	dot  Version
	nlen uint32
	pfx  uint32
}

func (it item) name() string  { return it.kv[:it.nlen] }
func (it item) value() string { return it.kv[it.nlen:] }

// lessItem orders items by name, then dot. One comparison of the names
// tells both whether they differ and which comes first: names of one
// collection often share a long prefix, which != then < read twice.
func lessItem(a, b item) bool {
	if a.pfx != b.pfx && a.pfx != 0 && b.pfx != 0 {
		return a.pfx < b.pfx
	}
	if c := strings.Compare(a.name(), b.name()); c != 0 {
		return c < 0
	}
	return a.dot.Compare(b.dot) < 0
}

// newItem is e as a tree keeps it: its name and value copied.
func newItem(e Elem) item {
	return item{kv: string(e.Name) + string(e.Value), nlen: uint32(len(e.Name)), dot: e.Dot}
}

// key is the item to look e up by; it borrows e's name without a copy, so
// it must not be stored.
func key(e Elem) item {
	return item{kv: unsafe.String(unsafe.SliceData(e.Name), len(e.Name)), nlen: uint32(len(e.Name)), dot: e.Dot}
}

// namePfx is name's item.pfx in a tree whose names shared prefix: the four
// bytes after it, zero-padded (a shorter name pads with zeros, so the
// order of two pfx is their names' whenever they differ), or zero, which
// compares by the names, if name lacks the prefix.
func namePfx(name []byte, prefix string) uint32 {
	if len(name) < len(prefix) || string(name[:len(prefix)]) != prefix {
		return 0
	}
	var p [4]byte
	copy(p[:], name[len(prefix):])
	return binary.BigEndian.Uint32(p[:])
}

// newItemIn is newItem for list which of b, its pfx set.
func (b *bigState) newItemIn(which int, e Elem) item {
	it := newItem(e)
	if b.prefixes != nil {
		it.pfx = namePfx(e.Name, b.prefixes[which])
	}
	return it
}

// keyIn is key for list which of b, its pfx set.
func (b *bigState) keyIn(which int, e Elem) item {
	k := key(e)
	if b.prefixes != nil {
		k.pfx = namePfx(e.Name, b.prefixes[which])
	}
	return k
}

// minOwnPrefix is the fewest names a list holds for its tree to take the
// prefix they share (treePrefixes).
const minOwnPrefix = 64

// treePrefixes is the prefixes of the trees of t's lists (bigState.prefixes):
// the prefix a list's names share, if it holds enough of them to tell;
// otherwise the one every name of t shares. The names of a list that holds
// few when the trees are built, the traces most often, are the collection's
// names as the others' are: a prefix of the one or two it holds (a whole
// name) or of none ("") would leave every later comparison in its tree to
// read the names.
func treePrefixes(t *Typed) *[numLists]string {
	ps := new([numLists]string)
	all, some := "", false
	for i := range numLists {
		if l := t.list(i); len(l) > 0 {
			p := sharedPrefix(l)
			if some {
				p = p[:commonPrefixLen(all, p)]
			}
			all, some = p, true
		}
	}
	for i := range numLists {
		if l := t.list(i); len(l) >= minOwnPrefix {
			ps[i] = sharedPrefix(l)
		} else {
			ps[i] = all
		}
	}
	return ps
}

// commonPrefixLen is the length of the prefix a and b share.
func commonPrefixLen(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// sharedPrefix is the prefix the sorted names of elems share, up to 64
// bytes.
func sharedPrefix(elems []Elem) string {
	if len(elems) == 0 {
		return ""
	}
	a, z := elems[0].Name, elems[len(elems)-1].Name
	n := 0
	for n < len(a) && n < len(z) && n < 64 && a[n] == z[n] {
		n++
	}
	return string(a[:n])
}

// elem is it as an Elem whose name and value point into it: read-only, as
// every element a Typed hands out.
func (it item) elem() Elem {
	p := unsafe.StringData(it.kv)
	e := Elem{Name: unsafe.Slice(p, it.nlen), Dot: it.dot}
	if n := len(it.kv) - int(it.nlen); n > 0 {
		e.Value = unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(p), it.nlen)), n)
	}
	return e
}

// treeDegree is the trees' branching: a write copies the nodes on its path,
// so smaller nodes than the library's default (32) copy less per write. The
// library grows a node's items by append and splits a full node into two
// halves that share its array: with 40-byte items, 16 (31 items) lets a
// half-full node grow to its full size in one step of the allocator's size
// classes, where 12 (23 items) took two and left arrays of 44 behind
// (measured: 143 bytes an element of a pushed list, against 223).
const treeDegree = 16

func newTree() *btree.BTreeG[item] {
	return btree.NewBTreeGOptions(lessItem, btree.Options{NoLocks: true, Degree: treeDegree})
}

func (b *bigState) size() int {
	return b.lists[0].Len() + b.lists[1].Len() + b.lists[2].Len() + b.lists[3].Len() + b.listed.len()
}

// count is the number of elements (dots) in list which.
func (b *bigState) count(which int) int {
	if which == listList {
		return b.listed.len()
	}
	return b.lists[which].Len()
}

// bigCopy is t's elements in the large form, sharing t's trees if it has
// them: the copy may be changed, t stays as it is.
func (t *Typed) bigCopy() *bigState {
	if t.big != nil {
		c := &bigState{names: t.big.names, sum: t.big.sum, bytes: t.big.bytes, loose: t.big.loose, prefixes: t.big.prefixes}
		for i, l := range t.big.lists {
			c.lists[i] = l.Copy()
		}
		c.listed = t.big.listed.copy()
		if t.big.scores != nil {
			c.scores = t.big.scores.Copy()
		}
		if t.big.zcounts != nil {
			c.zcounts, c.zsum = t.big.zcounts.Copy(), t.big.zsum
		}
		if t.big.counts != nil {
			c.counts, c.csum, c.cbytes = t.big.counts.Copy(), t.big.csum, t.big.cbytes
		}
		return c
	}
	b := &bigState{prefixes: treePrefixes(t)}
	for i := range b.lists {
		b.lists[i] = newTree()
	}
	for which := range b.lists {
		if which == listList && b.loadList(t.Listed) {
			continue
		}
		for _, e := range t.list(which) {
			b.insert(which, e, nil)
		}
	}
	for _, c := range t.ScoreCounts {
		b.setScoreCount(c)
	}
	for _, c := range t.Counts {
		b.setCount(c)
	}
	b.scores = scoreIndex(b)
	b.compact()
	return b
}

// compact copies every node of b's trees into arrays of the size it holds.
// The B-tree library splits a full node into halves that share its array,
// and the half that grows next moves to an array of its own, so the other
// keeps an array twice the size of its items: a collection loaded in order
// (pushes at one end, members added in name order) holds every leaf so.
// A copy sizes each array by the half's own capacity (measured in the
// record: a pushed list 139 bytes an element before, 101 after; a sorted set
// loaded 100 members a write, 168 and 131). b's trees are replaced by the
// copies; the trees it had stay as they were for whoever holds them.
func (b *bigState) compact() {
	for i, l := range b.lists {
		b.lists[i] = compactTree(l)
	}
	if b.scores != nil {
		b.scores = compactTree(b.scores)
	}
	if b.zcounts != nil {
		b.zcounts = compactTree(b.zcounts)
	}
	if b.counts != nil {
		b.counts = compactTree(b.counts)
	}
	b.ownList()
	b.loose = 0
	b.adopted, b.taken = false, nil // the trees are b's own now
}

// compactTree is a copy of t whose every node is copied (copy on write of
// each node, forced by a scan for change).
func compactTree[T any](t *btree.BTreeG[T]) *btree.BTreeG[T] {
	if t.Len() == 0 {
		return t
	}
	c := t.Copy()
	c.ScanMut(func(T) bool { return true })
	return c
}

// compactDue reports whether b's trees took enough elements since they were
// last compacted that a compaction is worth its cost: half as many again as
// they hold, so that compactions cost a constant share of the adds.
func (b *bigState) compactDue() bool {
	return b.loose >= bigElems && b.loose >= b.size()/b.compactShare()
}

// compactShare is the share of a state's size (1/n) that it takes in loose
// elements before a compaction: a set's, a quarter, so that a set loaded in
// order keeps less than a quarter of its members in half-empty nodes,
// where up to half could be (members cost 40 bytes in a node; a set's
// memory is mostly its member tree's); compactions then copy the set every
// third of its size added, not every doubling.
func (b *bigState) compactShare() int {
	if b.lists[listMembers].Len() > b.size()/2 { // sets' hook
		return 4
	}
	return 2
}

// hints holds a merge's path hints (tidwall/btree's PathHint), one per
// list: the searches a merge makes for one element (is it traced, is it
// there, does its name hold another dot, then the change) follow the same
// path, which a hint walks with a comparison or two a level rather than a
// binary search of every node. A hint is a guess the search checks, so a
// wrong one costs a search, never a wrong answer. It is written by the
// search, so only a merge's own (never a shared state's) is passed.
type hints [numLists]btree.PathHint

// at is list which's hint; nil (no hint) for a nil h.
func (h *hints) at(which int) *btree.PathHint {
	if h == nil {
		return nil
	}
	return &h[which]
}

// has reports whether list which holds element e (by name and dot).
func (b *bigState) has(which int, e Elem, h *hints) bool {
	if which == listList {
		return b.listed.has(e.Name, e.Dot)
	}
	_, ok := b.lists[which].GetHint(b.keyIn(which, e), h.at(which))
	return ok
}

// named reports whether list which holds any element named name.
func (b *bigState) named(which int, name []byte, h *hints) bool {
	if which == listList {
		return b.listed.named(name)
	}
	found := false
	b.lists[which].AscendHint(b.keyIn(which, Elem{Name: name}), func(it item) bool {
		found = it.name() == string(name)
		return false
	}, h.at(which))
	return found
}

// insert adds e, copying its name and value: a tree outlives the buffers
// (a request, a message) an incoming element may point into.
func (b *bigState) insert(which int, e Elem, h *hints) {
	if which != listRemoved && !b.named(which, e.Name, h) {
		b.names[which]++
	}
	if which == listList {
		if old, replaced := b.setListed(e); replaced {
			b.sum -= elemHash(which, old)
		}
		b.sum += elemHash(which, e)
		return
	}
	if old, replaced := b.setItem(which, b.newItemIn(which, e), h); replaced {
		b.sum -= elemHash(which, old.elem())
		b.bytes -= int64(len(old.kv))
	} else {
		b.loose++
	}
	b.sum += elemHash(which, e)
	b.bytes += int64(len(e.Name) + len(e.Value))
}

func (b *bigState) delete(which int, e Elem, h *hints) {
	if !b.has(which, e, h) {
		return // a lookup copies nothing; a Delete copies its path even if it finds nothing
	}
	if which == listList {
		if old, ok := b.deleteListed(e.Name, e.Dot); ok {
			b.sum -= elemHash(which, old)
			if !b.listed.named(e.Name) {
				b.names[which]--
			}
		}
		return
	}
	old, ok := b.deleteItem(which, b.keyIn(which, e), h)
	if !ok {
		return
	}
	b.sum -= elemHash(which, old.elem())
	b.bytes -= int64(len(old.kv))
	if which != listRemoved && !b.named(which, e.Name, h) {
		b.names[which]--
	}
}

// collectTraces is b without the traces old reports, in a copy (b stays as
// it is); dropped is false, and the copy nil, when there are none. Under a
// steady stream of pops most traces are stable at each pass and the newest
// are not: when more go than stay, the trace tree is built again from those
// that stay, in order, rather than each going by a delete that copies its
// path (collection holds the write lock meanwhile).
func (b *bigState) collectTraces(old func(Elem) bool) (*bigState, bool) {
	traces := b.lists[listRemoved]
	drop := 0
	traces.Scan(func(it item) bool {
		if old(it.elem()) {
			drop++
		}
		return true
	})
	if drop == 0 {
		return nil, false
	}
	c := (&Typed{big: b}).bigCopy()
	keep := traces.Len() - drop
	if keep >= drop {
		var gone []item
		traces.Scan(func(it item) bool {
			if old(it.elem()) {
				gone = append(gone, it)
			}
			return true
		})
		for _, it := range gone {
			c.delete(listRemoved, it.elem(), nil)
		}
		return c, true
	}
	kept := newTree()
	traces.Scan(func(it item) bool {
		if old(it.elem()) {
			c.sum -= elemHash(listRemoved, it.elem())
			c.bytes -= int64(len(it.kv))
		} else {
			kept.Load(it)
		}
		return true
	})
	c.lists[listRemoved] = kept
	return c, true
}

// absorb merges other's elements and traces into b.
func (b *bigState) absorb(other *Typed, h *hints) {
	other.each(listRemoved, func(run []Elem) bool {
		for _, r := range run {
			if have, ok := b.lists[listRemoved].GetHint(b.keyIn(listRemoved, r), h.at(listRemoved)); ok {
				if r.TraceAt() < have.elem().TraceAt() {
					b.insert(listRemoved, r, h) // the earlier removal's trace, as unionTraces keeps
				}
				continue
			}
			b.insert(listRemoved, r, h)
			for _, which := range elemLists {
				if b.count(which) > 0 {
					b.delete(which, r, h)
				}
			}
		}
		return true
	})
	for _, which := range elemLists {
		other.each(which, func(run []Elem) bool {
			for _, e := range run {
				if !b.has(listRemoved, e, h) && !b.has(which, e, h) {
					b.insert(which, e, h)
				}
			}
			return true
		})
	}
}

// absorbOne is absorb for an other whose elements and traces all bear one
// name (one field or member written or removed: what a command's write of
// one element, or a peer's push of it, brings). It reads the traces held of
// that name with one search of the trace tree, and each element list's run
// of it with one search of that list's tree; it answers absorb's questions
// (is this trace held, and since when? is this element traced, or there?
// is its name still held?) from those runs, and makes its changes along the
// paths those searches hinted, where absorb searches again for each
// question of each element. The result is absorb's. It returns the sorted
// set's run of the name before and after, for its score index (read
// whatever changes if wantScored); other holds no list elements and b none
// (absorbOne's caller sees to it).
func (b *bigState) absorbOne(other *Typed, name []byte, wantScored bool, h *hints) (scoredWas, scored []Elem) {
	var heldBuf, goneBuf [4]Elem
	held := b.runInto(heldBuf[:0], listRemoved, name, h)
	gone := goneBuf[:0] // the traces newly held: their elements go
	for _, r := range other.Removed {
		if i := slices.IndexFunc(held, func(t Elem) bool { return t.Dot == r.Dot }); i >= 0 {
			if r.TraceAt() < held[i].TraceAt() {
				b.insert(listRemoved, r, h) // the earlier removal's trace, as unionTraces keeps
				held[i] = r
			}
			continue
		}
		b.insert(listRemoved, r, h)
		held = append(held, r)
		gone = append(gone, r)
	}
	for _, which := range [...]int{listFields, listMembers, listScored} {
		in := other.list(which)
		if len(in) == 0 && (len(gone) == 0 || b.count(which) == 0) && (which != listScored || !wantScored) {
			continue
		}
		var runBuf [4]Elem
		run := b.runInto(runBuf[:0], which, name, h)
		if which == listScored {
			scoredWas = slices.Clone(run)
		}
		was := len(run) > 0
		for _, r := range gone {
			i := slices.IndexFunc(run, func(e Elem) bool { return e.Dot == r.Dot })
			if i < 0 {
				continue
			}
			old, _ := b.deleteItem(which, b.keyIn(which, r), h)
			b.sum -= elemHash(which, old.elem())
			b.bytes -= int64(len(old.kv))
			run = slices.Delete(run, i, i+1)
		}
		for _, e := range in {
			dotIs := func(x Elem) bool { return x.Dot == e.Dot }
			if slices.ContainsFunc(held, dotIs) || slices.ContainsFunc(run, dotIs) {
				continue
			}
			it := b.newItemIn(which, e)
			b.setItem(which, it, h)
			b.sum += elemHash(which, e)
			b.bytes += int64(len(it.kv))
			b.loose++
			i, _ := slices.BinarySearchFunc(run, e, compareND)
			run = slices.Insert(run, i, it.elem())
		}
		switch is := len(run) > 0; {
		case is && !was:
			b.names[which]++
		case was && !is:
			b.names[which]--
		}
		if which == listScored {
			scored = slices.Clone(run) // not run: its buffer would go to the heap for every list
		}
	}
	return scoredWas, scored
}

// run is the elements of list which named name, in dot order.
func (b *bigState) run(which int, name []byte, h *hints) []Elem {
	if which == listList {
		return b.listed.run(name)
	}
	return b.runInto(nil, which, name, h)
}

// runInto appends to out the elements of list which (not the list's)
// named name, in dot order.
func (b *bigState) runInto(out []Elem, which int, name []byte, h *hints) []Elem {
	b.lists[which].AscendHint(b.keyIn(which, Elem{Name: name}), func(it item) bool {
		if it.name() != string(name) {
			return false
		}
		out = append(out, it.elem())
		return true
	}, h.at(which))
	return out
}

// each calls fn with each name of list which and its elements, in name
// order.
func (b *bigState) each(which int, fn func(run []Elem) bool) {
	var run []Elem
	stopped := false
	if which == listList {
		var arena []byte
		b.listed.ascend(nil, Version{}, func(c *runCursor) bool {
			if len(run) > 0 && !bytes.Equal(run[0].Name, c.name) {
				if !fn(run) {
					stopped = true
					return false
				}
				run = run[:0]
			}
			run = append(run, c.elem(&arena))
			return true
		})
		if !stopped && len(run) > 0 {
			fn(run)
		}
		return
	}
	b.lists[which].Scan(func(it item) bool {
		e := it.elem()
		if len(run) > 0 && !bytes.Equal(run[0].Name, e.Name) {
			if !fn(run) {
				stopped = true
				return false
			}
			run = run[:0]
		}
		run = append(run, e)
		return true
	})
	if !stopped && len(run) > 0 {
		fn(run)
	}
}

// elemHash is one element's share of a typed state's digest. The digest sums
// them, so that a large state's digest moves in O(1) per element changed.
func elemHash(which int, e Elem) uint64 {
	var d xxhash.Digest
	d.Reset()
	var buf [1 + binary.MaxVarintLen64 + versionLen]byte
	b := append(buf[:0], byte(which))
	b = binary.AppendUvarint(b, uint64(len(e.Name)))
	d.Write(b)
	d.Write(e.Name)
	d.Write(appendVersion(buf[:0], e.Dot))
	d.Write(e.Value)
	return mix64(d.Sum64())
}

// mix64 is the SplitMix64 finaliser, so that summed hashes stay well spread.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Detached is t in a form that shares no memory with the buffers it was
// decoded or built from: a large state in B-trees, which own their
// elements. A small state is returned as it is: a keyspace encodes it.
func (t *Typed) Detached() *Typed {
	if !t.Large() || t.big != nil {
		return t
	}
	d := *t
	d.big = t.bigCopy()
	d.Fields, d.Members, d.Removed, d.Scored, d.Listed = nil, nil, nil, nil, nil
	d.Counts, d.ScoreCounts = nil, nil // in the large form's trees
	return &d
}

// Large reports whether t is big enough to be kept as an object of its own
// rather than encoded (a keyspace's choice; see keyspace.Table).
func (t *Typed) Large() bool { return t != nil && (t.big != nil || t.weight() > bigElems) }

// MemSize is about the memory t holds.
func (t *Typed) MemSize() int64 {
	if t == nil {
		return 0
	}
	const perElem = 80 // an item in a B-tree node, with the node's share
	if t.big != nil {
		b := t.big
		n := int64(b.size()-b.listed.len()-b.lists[listScored].Len())*perElem + b.bytes
		// a list's and a sorted set's own (list_runs.go, zset.go)
		return n + b.listed.memSize() + b.zsetMemSize() + t.countMemSize()
	}
	n := int64(t.size()) * int64(unsafe.Sizeof(Elem{}))
	for which := range numLists {
		for _, e := range t.list(which) {
			n += int64(len(e.Name) + len(e.Value))
		}
	}
	return n + t.countMemSize()
}

// perCount is about the memory a count holds beside its name and float
// totals: the Count itself and, in the large form, its tree node's share.
const perCount = int64(unsafe.Sizeof(Count{})) + 16

// countMemSize is about the memory t's counts hold.
func (t *Typed) countMemSize() int64 {
	if t.big != nil {
		return t.big.cbytes
	}
	var n int64
	for _, c := range t.Counts {
		n += countMem(c)
	}
	return n
}

// countMem is about the memory count c holds.
func countMem(c Count) int64 { return perCount + int64(len(c.Name)+len(c.FTotal)+len(c.FReset)) }

// The large form's counts, in a copy-on-write B-tree ordered as
// Typed.Counts, so that an increment of one of a large hash's counters
// copies a path, not every count.

// setCount merges c into b's counts, copying its name and float totals (a
// tree outlives the buffers an incoming count may point into).
func (b *bigState) setCount(c Count) {
	if b.counts == nil {
		b.counts = btree.NewBTreeGOptions(lessCount, btree.Options{NoLocks: true, Degree: treeDegree})
	}
	if old, ok := b.counts.Get(c); ok {
		m := mergeCount(old, c)
		if equalCount(old, m) {
			return
		}
		m.Name = old.Name
		b.csum -= countDigest(old)
		b.cbytes -= countMem(old)
		c = m
	} else {
		c.Name = bytes.Clone(c.Name)
	}
	c.FTotal, c.FReset = Exact(strings.Clone(string(c.FTotal))), Exact(strings.Clone(string(c.FReset)))
	b.counts.Set(c)
	b.csum += countDigest(c)
	b.cbytes += countMem(c)
}

// countRun is counter name's counts in b, in node order.
func (b *bigState) countRun(name []byte) []Count {
	if b.counts == nil {
		return nil
	}
	var out []Count
	b.counts.Ascend(Count{Name: name}, func(c Count) bool {
		if !bytes.Equal(c.Name, name) {
			return false
		}
		out = append(out, c)
		return true
	})
	return out
}
