package bridge

import (
	"bytes"

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
// deadline is a PEXPIREAT or PERSIST. Where additive, given the digest of
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
	case Hash, Set:
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

// typedDiff is the field- or member-level write that takes the node's
// state n to the backend's b (without removals when additive).
func typedDiff(n, b State, additive bool) node.TypedEdit {
	e := node.TypedEdit{At: b.At, WithExpiry: n.Kind != b.Kind || n.At != b.At}
	if n.Kind != b.Kind {
		n = State{} // a key of another type is replaced as a whole
	}
	if b.Kind == Hash {
		e.Kind = record.KindHash
		have := make(map[string][]byte, len(n.Fields)/2)
		for i := 0; i+1 < len(n.Fields); i += 2 {
			have[string(n.Fields[i])] = n.Fields[i+1]
		}
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

// unlessSynced is additiveFor for a key whose backend state was last base:
// a node state other than base holds changes the backend has not got.
func unlessSynced(base uint64) func(uint64) bool {
	return func(nodeDigest uint64) bool { return nodeDigest != base }
}

// always is additiveFor's constant answer.
func always(additive bool) func(uint64) bool { return func(uint64) bool { return additive } }
