package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/bridge/shadow"
	"github.com/redmesh/redmesh/node"
)

// A list the backend told of pushes and pops at its ends only (see
// notesListEnds) is the list the bridge last saw there with elements gone
// from its ends and others pushed there: what changed is read from its
// ends, listWindow elements at each, and its length, rather than whole.
const (
	listWindow = 128
	// listMinRun is the fewest elements of a window that must be, in
	// order, elements of the base for the window to be placed in it.
	listMinRun = 16
)

// listEnds is what changed in a long list, read from its ends: elements
// popped at the head and the tail of the base, and those pushed there (in
// list order); the deadline the list has now, and its new base's element
// hashes.
type listEnds struct {
	PopHead, PopTail int
	Head, Tail       [][]byte
	At               int64
	names            []uint64
}

// base is the list's new base.
func (e *listEnds) base() base {
	return base{Digest: listDigest(e.names, e.At), Kind: uint8(List), At: e.At, Elems: shadow.NewElems(e.names, nil)}
}

// endsOf places the windows read at the ends of a list of n elements (its
// first elements, head, and its last, tail) in from, the list's base: the
// longest run a window shares with the base's elements near that end must
// reach the window's inner edge, and the lengths must add up; nil where
// they do not (read the list whole).
func endsOf(from *base, n int, at int64, head, tail [][]byte) *listEnds {
	was := from.Elems.Names
	l := len(was)
	if n <= 2*listWindow || len(head) != listWindow || len(tail) != listWindow || l <= 2*listWindow {
		return nil
	}
	near := func(names []uint64) [][]byte {
		out := make([][]byte, len(names))
		for i, h := range names {
			out[i] = binary.BigEndian.AppendUint64(nil, h)
		}
		return out
	}
	// The head window: pushed elements, then the base from its element a.
	wasHead, hh := near(was[:2*listWindow]), listHashes(head)
	a, p, run := commonRun(wasHead, hh)
	if run < listMinRun || p+run != listWindow || !once(wasHead, hh[p:]) {
		return nil
	}
	// The tail window: the base up to its element l-b, then pushed ones.
	off := l - 2*listWindow
	wasTail, th := near(was[off:]), listHashes(tail)
	i, k, run2 := commonRun(wasTail, th)
	if run2 < listMinRun || k != 0 || !once(wasTail, th[:run2]) {
		return nil
	}
	end := off + i + run2 // the base's elements kept end here
	q := listWindow - run2
	if end-a < 2*listWindow-p-q || p+(end-a)+q != n {
		return nil
	}
	e := &listEnds{PopHead: a, PopTail: l - end, At: at}
	if p > 0 {
		e.Head = head[:p]
	}
	if q > 0 {
		e.Tail = tail[run2:]
	}
	e.names = make([]uint64, 0, n)
	for _, v := range e.Head {
		e.names = append(e.names, valueHash(v))
	}
	e.names = append(e.names, was[a:end]...)
	for _, v := range e.Tail {
		e.names = append(e.names, valueHash(v))
	}
	return e
}

// once reports whether run occurs in list at one place only: a window
// that fits its base at two places (a list repeating itself) tells
// nothing of the elements between the windows.
func once(list, run [][]byte) bool {
	found := 0
	for i := 0; i+len(run) <= len(list) && found < 2; i++ {
		if slices.EqualFunc(list[i:i+len(run)], run, bytes.Equal) {
			found++
		}
	}
	return found == 1
}

// readListEnds reads, for each of keys (lists the backend told of pushes
// and pops at their ends, whose bases are from), their ends in one MULTI:
// TYPE, PEXPIRETIME, LLEN and a window at each end. A key whose ends
// cannot be placed in its base (or that is no longer a list) is nil.
func (r *reader) readListEnds(ctx context.Context, keys []string, from []*base) ([]*listEnds, error) {
	out := make([]*listEnds, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	types := make([]*redis.StatusCmd, len(keys))
	deadlines := make([]*redis.Cmd, len(keys))
	lens := make([]*redis.IntCmd, len(keys))
	heads := make([]*redis.StringSliceCmd, len(keys))
	tails := make([]*redis.StringSliceCmd, len(keys))
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			types[i] = p.Type(ctx, k)
			deadlines[i] = p.Do(ctx, "PEXPIRETIME", k)
			lens[i] = p.LLen(ctx, k)
			heads[i] = p.LRange(ctx, k, 0, listWindow-1)
			tails[i] = p.LRange(ctx, k, -listWindow, -1)
		}
		return nil
	})
	if err != nil && !isNilOrWrongType(err) {
		return nil, fmt.Errorf("read the ends of %d lists from backend: %w", len(keys), err)
	}
	bytesOf := func(vs []string) [][]byte {
		out := make([][]byte, len(vs))
		for i, v := range vs {
			out[i] = []byte(v)
		}
		return out
	}
	for i := range keys {
		if types[i].Val() != "list" {
			continue
		}
		at, _ := deadlines[i].Int64()
		out[i] = endsOf(from[i], int(lens[i].Val()), max(at, 0), bytesOf(heads[i].Val()), bytesOf(tails[i].Val()))
	}
	return out, nil
}

// takeInListEnds writes a list's change read from its ends (e, against its
// base from) into the node, as listDiff would from the whole list: the
// elements popped are removed where the node's list holds them (aligned as
// listDiff aligns), the pushed ones pushed. ok is false, with nothing
// written, where the node's key is not a list (read the list whole).
func takeInListEnds(l *node.LocalTx, key []byte, e *listEnds, from *base) (wrote, ok bool, err error) {
	cur, live, err := l.Get(key)
	if err != nil {
		return false, false, err
	}
	n := FromRecord(cur, live)
	if n.Kind != List {
		return false, false, nil
	}
	was := baseListHashes(from)
	ed := node.ListEdit{At: e.At, WithExpiry: expiryChanged(n, State{Kind: List, At: e.At}, change{from: from})}
	at := alignLists(was, listHashes(n.Members))
	for j := range was {
		if (j < e.PopHead || j >= len(was)-e.PopTail) && at[j] >= 0 {
			ed.Drop = append(ed.Drop, at[j])
		}
	}
	ed.Head, ed.Tail = e.Head, e.Tail
	if ed.Drop == nil && ed.Head == nil && ed.Tail == nil && !ed.WithExpiry {
		return false, true, nil
	}
	return true, true, l.EditList(key, ed)
}
