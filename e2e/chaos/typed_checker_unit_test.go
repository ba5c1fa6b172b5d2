package chaos

import (
	"testing"
	"time"
)

// tw is a typed write at node, over [at, at+1ms], with its reply.
func tw(node int, at time.Duration, kind opKind, key, elem string, delta, reply int64, out outcome) op {
	return op{Node: node, Kind: kind, Key: key, Elem: elem, Delta: delta, Reply: reply, Value: "v" + elem,
		Invoke: t0.Add(at), Done: t0.Add(at + time.Millisecond), Outcome: out}
}

func typedState(keys map[string]keyState) []nodeState { return []nodeState{state(keys, nil)} }

func set(members ...string) keyState {
	m := map[string]string{}
	for _, s := range members {
		m[s] = ""
	}
	return elemState("set", m)
}

func elemState(typ string, m map[string]string) keyState {
	reply := []any{}
	for k, v := range m {
		reply = append(reply, k)
		if typ != "set" {
			reply = append(reply, v)
		}
	}
	s, err := encodeElems(typ, reply)
	if err != nil {
		panic(err)
	}
	return keyState{Type: typ, Value: s}
}

// The typed checks fail a run that lost, resurrected or miscounted: each
// case is wrong in one way, or right though it looks odd.
func TestCheckerTyped(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name                                 string
		history                              []op
		states                               []nodeState
		lost, resurrected, phantoms, counter int
		cuts                                 []cut
	}{{
		name: "counter within its range",
		history: []op{tw(0, 0, opIncr, "cnt/1", "", 5, 5, ok), tw(1, 0, opIncr, "cnt/1", "", 3, 8, ok),
			tw(1, 5*ms, opIncr, "cnt/1", "", -2, 0, unknown), tw(1, 6*ms, opIncr, "cnt/1", "", 4, 0, unknown)},
		states: typedState(map[string]keyState{"cnt/1": {Type: "string", Value: "6"}}),
	}, {
		name:    "counter below the acknowledged sum",
		history: []op{tw(0, 0, opIncr, "cnt/1", "", 5, 5, ok), tw(1, 0, opIncr, "cnt/1", "", 3, 8, ok), tw(1, 5*ms, opIncr, "cnt/1", "", -2, 0, unknown)},
		states:  typedState(map[string]keyState{"cnt/1": {Type: "string", Value: "5"}}),
		counter: 1,
	}, {
		name:    "counter gone",
		history: []op{tw(0, 0, opIncr, "cnt/1", "", 5, 5, ok)},
		states:  typedState(nil),
		lost:    1,
	}, {
		name:    "refused increments count for nothing",
		history: []op{tw(0, 0, opIncr, "cnt/1", "", 5, 5, ok), tw(0, 2*ms, opIncr, "cnt/1", "", 7, 0, failed)},
		states:  typedState(map[string]keyState{"cnt/1": {Type: "string", Value: "12"}}),
		counter: 1,
	}, {
		name:    "hash counting field and sorted set counting member",
		history: []op{tw(0, 0, opHIncr, "hash/1", "n0", 4, 4, ok), tw(1, 0, opZIncr, "zset/1", "i0", -3, -3, ok), tw(1, 0, opZIncr, "zset/1", "i0", 10, 7, ok)},
		states: typedState(map[string]keyState{
			"hash/1": elemState("hash", map[string]string{"n0": "4"}),
			"zset/1": elemState("zset", map[string]string{"i0": "6"}),
		}),
		counter: 1,
	}, {
		name:    "acknowledged member missing",
		history: []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok)},
		states:  typedState(nil),
		lost:    1,
	}, {
		name:    "an SADD of a member held (reply 0) is an add: a remove done before it cannot have seen it",
		history: []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok), tw(1, 5*ms, opSRem, "set/1", "m1", 0, 1, ok), tw(0, 10*ms, opSAdd, "set/1", "m1", 0, 0, ok)},
		states:  typedState(nil),
		lost:    1,
	}, {
		name:    "a ZADD of the score a member has (CH reply 0) is an add too",
		history: []op{tw(0, 0, opZAdd, "zset/1", "a1", 5, 1, ok), tw(1, 5*ms, opZRem, "zset/1", "a1", 0, 1, ok), tw(0, 10*ms, opZAdd, "zset/1", "a1", 5, 0, ok)},
		states:  typedState(nil),
		lost:    1,
	}, {
		name:    "a remove done before the add began cannot have seen it",
		history: []op{tw(1, 0, opSRem, "set/1", "m1", 0, 1, ok), tw(0, 5*ms, opSAdd, "set/1", "m1", 0, 1, ok)},
		states:  typedState(nil),
		lost:    1,
	}, {
		name: "a remove across a partition cannot have seen an add of a member held (the SADD answered 0)",
		history: []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok), // both nodes hold m1 before the cut
			tw(0, 20*ms, opSAdd, "set/1", "m1", 0, 0, ok), tw(1, 30*ms, opSRem, "set/1", "m1", 0, 1, ok)},
		cuts:   []cut{{A: []int{0}, B: []int{1, 2}, From: t0.Add(10 * ms), To: t0.Add(40 * ms)}},
		states: typedState(nil),
		lost:   1,
	}, {
		name: "a remove after the partition healed may have seen the add",
		history: []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok),
			tw(0, 20*ms, opSAdd, "set/1", "m1", 0, 0, ok), tw(1, 50*ms, opSRem, "set/1", "m1", 0, 1, ok)},
		cuts:   []cut{{A: []int{0}, B: []int{1, 2}, From: t0.Add(10 * ms), To: t0.Add(40 * ms)}},
		states: typedState(nil),
	}, {
		name: "a remove on the add's side of a partition may have seen it",
		history: []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok),
			tw(0, 20*ms, opSAdd, "set/1", "m1", 0, 0, ok), tw(2, 30*ms, opSRem, "set/1", "m1", 0, 1, ok)},
		cuts:   []cut{{A: []int{0, 2}, B: []int{1}, From: t0.Add(10 * ms), To: t0.Add(40 * ms)}},
		states: typedState(nil),
	}, {
		name:    "a remove of unknown fate may have run after the add",
		history: []op{tw(1, 0, opSRem, "set/1", "m1", 0, 0, unknown), tw(0, 5*ms, opSAdd, "set/1", "m1", 0, 1, ok)},
		states:  typedState(nil),
	}, {
		name:        "member back after its node removed it",
		history:     []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok), tw(0, 5*ms, opSRem, "set/1", "m1", 0, 1, ok)},
		states:      typedState(map[string]keyState{"set/1": set("m1")}),
		resurrected: 1,
	}, {
		name:    "a concurrent add elsewhere wins over the remove",
		history: []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok), tw(0, 5*ms, opSRem, "set/1", "m1", 0, 1, ok), tw(1, 3*ms, opSAdd, "set/1", "m1", 0, 1, ok)},
		states:  typedState(map[string]keyState{"set/1": set("m1")}),
	}, {
		name:     "a member nobody added",
		history:  []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok)},
		states:   typedState(map[string]keyState{"set/1": set("m1", "m2")}),
		phantoms: 1,
	}, {
		name:     "a hash field with a value its node overwrote",
		history:  []op{tw(0, 0, opHSet, "hash/1", "f1", 0, 1, ok), {Node: 0, Kind: opHSet, Key: "hash/1", Elem: "f1", Value: "later", Invoke: t0.Add(5 * ms), Done: t0.Add(6 * ms), Outcome: ok}},
		states:   typedState(map[string]keyState{"hash/1": elemState("hash", map[string]string{"f1": "vf1"})}),
		phantoms: 1,
	}, {
		name:    "a sorted set member at a score a ZADD gave it",
		history: []op{tw(0, 0, opZAdd, "zset/1", "a1", 7, 1, ok), tw(1, 0, opZAdd, "zset/1", "a1", -4, 1, ok)},
		states:  typedState(map[string]keyState{"zset/1": elemState("zset", map[string]string{"a1": "-4"})}),
	}, {
		name:        "a deleted typed key back",
		history:     []op{tw(0, 0, opHSet, "tdel/0/0/1", "x", 0, 1, ok), {Node: 0, Kind: opDel, Key: "tdel/0/0/1", Invoke: t0.Add(5 * ms), Done: t0.Add(6 * ms), Outcome: ok, Deleted: 1}},
		states:      typedState(map[string]keyState{"tdel/0/0/1": elemState("hash", map[string]string{"x": "vx"})}),
		resurrected: 1,
	}, {
		name:    "a typed key that lost its only write",
		history: []op{tw(0, 0, opZAdd, "tdel/0/0/1", "x", 1, 1, ok)},
		states:  typedState(nil),
		lost:    1,
	}, {
		name:     "a typed key of the wrong type",
		history:  []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok)},
		states:   typedState(map[string]keyState{"set/1": {Type: "string", Value: "x"}}),
		phantoms: 1,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := check(c.history, c.states, clockHistory{}, c.cuts)
			if v.Lost != c.lost || v.Resurrected != c.resurrected || v.Phantoms != c.phantoms || v.CounterMismatches != c.counter || v.Diverged != 0 {
				t.Errorf("got %s; want %d lost, %d resurrected, %d phantom, %d counter mismatches", v.describe(), c.lost, c.resurrected, c.phantoms, c.counter)
			}
			if v.ok() != (c.lost+c.resurrected+c.phantoms+c.counter == 0) {
				t.Errorf("ok() = %v for %s", v.ok(), v.describe())
			}
		})
	}
}

// Typed states that differ between nodes diverge, by type as by contents.
func TestCheckerTypedDiverged(t *testing.T) {
	h := []op{tw(0, 0, opSAdd, "set/1", "m1", 0, 1, ok), tw(1, 0, opSAdd, "set/1", "m2", 0, 1, unknown)}
	v := check(h, []nodeState{state(map[string]keyState{"set/1": set("m1", "m2")}, nil), state(map[string]keyState{"set/1": set("m1")}, nil)}, clockHistory{}, nil)
	if v.Diverged != 1 {
		t.Errorf("got %s; want 1 diverged", v.describe())
	}
}

// A node's writes take rising versions, whatever its clock did; a write
// concurrent with another may take a lower one.
func TestCheckerClockForward(t *testing.T) {
	ms := time.Millisecond
	w := func(node int, at time.Duration, ts int64) op {
		return op{Node: node, Kind: opSet, Key: "s/1", Value: "x", Invoke: t0.Add(at), Done: t0.Add(at + 2*ms), Outcome: ok,
			Version: version{ts << 16, "00000000000000aa"}}
	}
	cases := []struct {
		name string
		h    []op
		want int
	}{
		{"rising", []op{w(0, 0, 100), w(0, 5*ms, 90+20), w(0, 10*ms, 200)}, 0},
		{"back after a jump", []op{w(0, 0, 100), w(0, 5*ms, 300), w(0, 10*ms, 250)}, 1},
		{"concurrent writes in either order", []op{w(0, 0, 100), w(0, ms, 90)}, 0},
		{"other nodes' clocks are their own", []op{w(0, 0, 100), w(1, 5*ms, 50)}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := check(c.h, nil, clockHistory{}, nil)
			if v.ClockBackwards != c.want {
				t.Errorf("got %s; want %d", v.describe(), c.want)
			}
		})
	}
}
