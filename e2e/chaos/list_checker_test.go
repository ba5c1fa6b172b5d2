package chaos

import (
	"encoding/json"
	"slices"
)

// A list is checked value by value: the workload writes every value once
// (pushes, LINSERTs and LSETs each write the worker's unique request
// value), so a value names one write, and the list's final order on every
// node is compared whole by checkConverged. Pops remove only what their
// node saw, so two nodes may pop the same element and both clients get it
// (at least once): the checker never counts pops against pushes, it asks
// of every acknowledged value that is gone whether something can have
// taken it.
//
//   - A value present was written by a request not refused, once only.
//   - A value present was neither returned by an acknowledged pop nor found
//     by an acknowledged LSET (which overwrote it): either removed it, with
//     every dot its node held of the element, so it is back (resurrected).
//   - An acknowledged value that is gone was taken by an acknowledged pop
//     or overwritten by an acknowledged LSET; or, written by an LSET, it
//     lost to a concurrent LSET of the same element (of two LSETs that did
//     not see each other the later shows); or else a pop or LSET of unknown
//     fate took it: each can have taken one element, so the values gone
//     unexplained may not outnumber them (lost).
//   - Order: of two values present, written at one node, the first
//     acknowledged before the second, a push, was invoked, the push is at
//     its end of the first: the node held the first when it pushed.

// listValues reads a list key's values, in order (encodeElems).
func (ks keyState) listValues() []string {
	var vs []string
	_ = json.Unmarshal([]byte(ks.Value), &vs)
	return vs
}

func isListWrite(o op) bool {
	switch o.Kind {
	case opLPush, opRPush, opLSet:
		return true
	case opLInsert:
		return o.Outcome != ok || o.Reply > 0
	}
	return false
}

func isPop(o op) bool { return o.Kind == opLPop || o.Kind == opRPop }

// checkList holds one node's list key to its history.
func checkList(v *verdict, node int, key string, ops []op, got keyState) {
	values := got.listValues()
	at := map[string]int{}
	written := map[string]op{} // value -> its write, refused ones left out
	for _, o := range ops {
		if o.Outcome != failed && isListWrite(o) {
			written[o.Value] = o
		}
	}
	for i, val := range values {
		if _, twice := at[val]; twice {
			v.Phantoms++
			v.problem("phantom: node %d holds %q twice in %s", node, val, key)
		}
		at[val] = i
		if _, ok := written[val]; !ok {
			v.Phantoms++
			v.problem("phantom: node %d holds %q in %s, which no client wrote there", node, val, key)
		}
	}

	// What took values: acknowledged pops and LSETs by the value they
	// returned or found; what may have, one element each: those of unknown
	// fate.
	taken := map[string]op{}
	budget := 0
	parent := map[string]string{} // an LSET's value -> the value it overwrote
	for _, o := range ops {
		switch {
		case o.Outcome == unknown && (isPop(o) || o.Kind == opLSet):
			budget++
		case o.Outcome != ok:
		case isPop(o) && o.Reply > 0, o.Kind == opLSet:
			what := o.Value
			if o.Kind == opLSet {
				what = o.Elem
				parent[o.Value] = o.Elem
			}
			if _, ok := taken[what]; !ok {
				taken[what] = o
			}
		}
	}
	for val, o := range taken {
		if _, present := at[val]; present {
			v.Resurrected++
			v.problem("resurrected: node %d holds %q in %s after acknowledged %v", node, val, key, o)
		}
	}
	var unexplained []op
	for _, o := range ops {
		if o.Outcome != ok || !isListWrite(o) {
			continue
		}
		if _, present := at[o.Value]; present {
			continue
		}
		if _, ok := taken[o.Value]; ok {
			continue
		}
		if o.Kind == opLSet && lostToConcurrentLSet(o.Value, parent) {
			continue
		}
		unexplained = append(unexplained, o)
	}
	if n := len(unexplained) - budget; n > 0 {
		v.Lost += n
		for _, o := range unexplained[:min(len(unexplained), 5)] {
			v.problem("lost: node %d has no %q in %s after acknowledged %v, and no acknowledged pop or LSET took it (%d gone so, %d requests of unknown fate could have)",
				node, o.Value, key, o, len(unexplained), budget)
		}
	}
	checkListOrder(v, node, key, ops, at)
}

// lostToConcurrentLSet reports whether value, written by an LSET, may
// have lost to another LSET of the same element that did not see it: an
// LSET of the element's chain of values (parent links: what each LSET
// overwrote) other than value's own ancestors.
func lostToConcurrentLSet(value string, parent map[string]string) bool {
	root := func(x string) string {
		for seen := 0; seen < len(parent)+1; seen++ {
			p, ok := parent[x]
			if !ok {
				return x
			}
			x = p
		}
		return x
	}
	ancestors := map[string]bool{}
	for x, ok := value, true; ok; x, ok = parent[x] {
		if ancestors[x] {
			break
		}
		ancestors[x] = true
	}
	r := root(value)
	for other := range parent {
		if !ancestors[other] && root(other) == r {
			return true
		}
	}
	return false
}

// checkListOrder holds the order of values written at one node: a push
// invoked after another write there was acknowledged lands past that
// write's element, at the push's end, if both are still there.
func checkListOrder(v *verdict, node int, key string, ops []op, at map[string]int) {
	byNode := map[int][]op{}
	for _, o := range ops {
		if _, present := at[o.Value]; present && o.Outcome == ok && isListWrite(o) {
			byNode[o.Node] = append(byNode[o.Node], o)
		}
	}
	bad := 0
	for _, writes := range byNode {
		slices.SortFunc(writes, func(a, b op) int { return a.Invoke.Compare(b.Invoke) })
		for j, b := range writes {
			if b.Kind != opLPush && b.Kind != opRPush {
				continue
			}
			for _, a := range writes[:j] {
				if !a.Done.Before(b.Invoke) {
					continue
				}
				if b.Kind == opRPush && at[b.Value] < at[a.Value] || b.Kind == opLPush && at[b.Value] > at[a.Value] {
					if bad++; bad <= 3 {
						v.problem("order: node %d holds %q at %d and %q at %d in %s, yet %v was invoked after %v was acknowledged at the same node",
							node, a.Value, at[a.Value], b.Value, at[b.Value], key, b, a)
					}
				}
			}
		}
	}
	v.Misordered += bad
}
