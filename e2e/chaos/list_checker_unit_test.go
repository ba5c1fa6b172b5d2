package chaos

import (
	"testing"
	"time"
)

// lw is a list request at node over [at, at+1ms]: value is what it wrote
// or popped, elem an LSET's overwritten value or an LINSERT's pivot.
func lw(node int, at time.Duration, kind opKind, value, elem string, reply int64, out outcome) op {
	return op{Node: node, Kind: kind, Key: "list/1", Value: value, Elem: elem, Reply: reply,
		Invoke: t0.Add(at), Done: t0.Add(at + time.Millisecond), Outcome: out}
}

func listState(values ...string) []nodeState {
	reply := make([]any, len(values))
	for i, v := range values {
		reply[i] = v
	}
	s, err := encodeElems("list", reply)
	if err != nil {
		panic(err)
	}
	return typedState(map[string]keyState{"list/1": {Type: "list", Value: s}})
}

// The list checks fail a run that lost, brought back, made up or
// misordered a value, and pass the ones pops explain.
func TestCheckerLists(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name                                    string
		history                                 []op
		states                                  []nodeState
		lost, resurrected, phantoms, misordered int
	}{{
		name:    "pushes at both ends, in order",
		history: []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(0, 5*ms, opRPush, "b", "", 2, ok), lw(0, 10*ms, opLPush, "c", "", 3, ok), lw(1, 0, opRPush, "d", "", 1, ok)},
		states:  listState("c", "a", "d", "b"),
	}, {
		name:    "an acknowledged push gone, nothing took it",
		history: []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(0, 5*ms, opRPush, "b", "", 2, ok)},
		states:  listState("a"),
		lost:    1,
	}, {
		name:    "a pushed value popped, at two nodes at once (at least once)",
		history: []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(0, 5*ms, opLPop, "a", "", 1, ok), lw(1, 5*ms, opRPop, "a", "", 1, ok)},
		states:  typedState(nil),
	}, {
		name: "values gone may not outnumber the pops of unknown fate",
		history: []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(0, 5*ms, opRPush, "b", "", 2, ok),
			lw(1, 10*ms, opLPop, "", "", 0, unknown)},
		states: typedState(nil),
		lost:   1,
	}, {
		name:        "a popped value back",
		history:     []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(1, 5*ms, opLPop, "a", "", 1, ok)},
		states:      listState("a"),
		resurrected: 1,
	}, {
		name:        "an overwritten value back",
		history:     []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(1, 5*ms, opLSet, "b", "a", 0, ok)},
		states:      listState("a", "b"),
		resurrected: 1,
		phantoms:    0,
	}, {
		name:    "of two concurrent LSETs of an element the later shows",
		history: []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(0, 5*ms, opLSet, "b", "a", 0, ok), lw(1, 5*ms, opLSet, "c", "a", 0, ok)},
		states:  listState("c"),
	}, {
		name:    "an LSET's value gone with no other LSET of its element",
		history: []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(0, 5*ms, opLSet, "b", "a", 0, ok), lw(1, 10*ms, opLSet, "c", "b", 0, ok), lw(1, 20*ms, opRPush, "d", "", 2, ok)},
		states:  listState("d"),
		lost:    1,
	}, {
		name:     "a value nobody wrote, a value twice, a refused push",
		history:  []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(0, 5*ms, opRPush, "b", "", 0, failed)},
		states:   listState("a", "a", "b", "z"),
		phantoms: 3,
	}, {
		name:       "a node's RPUSH ahead of its earlier write",
		history:    []op{lw(0, 0, opLInsert, "a", "x", 2, ok), lw(0, 5*ms, opRPush, "b", "", 3, ok), lw(0, 10*ms, opLPush, "c", "", 4, ok), lw(0, 0, opRPush, "x", "", 1, unknown)},
		states:     listState("x", "b", "a", "c"),
		misordered: 3, // b before a; c after a and after b
	}, {
		name:    "another node's concurrent push may land anywhere at its end",
		history: []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(1, 5*ms, opRPush, "b", "", 1, ok), lw(0, 10*ms, opRPush, "c", "", 3, ok)},
		states:  listState("b", "a", "c"),
	}, {
		name:    "an LINSERT that found no pivot wrote nothing",
		history: []op{lw(0, 0, opLInsert, "a", "none", -1, ok)},
		states:  typedState(nil),
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := check(c.history, c.states, clockHistory{}, nil)
			if v.Lost != c.lost || v.Resurrected != c.resurrected || v.Phantoms != c.phantoms || v.Misordered != c.misordered || v.Diverged != 0 {
				t.Errorf("got %s; want %d lost, %d resurrected, %d phantom, %d misordered", v.describe(), c.lost, c.resurrected, c.phantoms, c.misordered)
			}
		})
	}
}

// Two nodes holding a list's values in different orders diverge.
func TestCheckerListOrderDiverged(t *testing.T) {
	h := []op{lw(0, 0, opRPush, "a", "", 1, ok), lw(1, 0, opRPush, "b", "", 1, ok)}
	states := append(listState("a", "b"), listState("b", "a")...)
	if v := check(h, states, clockHistory{}, nil); v.Diverged != 1 {
		t.Errorf("got %s; want 1 diverged", v.describe())
	}
}
