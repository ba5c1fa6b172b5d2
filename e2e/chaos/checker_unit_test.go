package chaos

import (
	"testing"
	"time"
)

// The checker must fail a run that lost, resurrected or diverged: these
// histories and final states are each wrong in one way.

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func acked(kind opKind, key, value string, v version) op {
	o := op{Kind: kind, Key: key, Value: value, Invoke: t0, Done: t0.Add(time.Millisecond), Outcome: ok, Version: v}
	if kind == opDel {
		o.Deleted = 1
	}
	return o
}

func state(keys map[string]keyState, shared map[string]version) nodeState {
	if keys == nil {
		keys = map[string]keyState{}
	}
	if shared == nil {
		shared = map[string]version{}
	}
	return nodeState{keys: keys, shared: shared}
}

func TestCheckerVerdicts(t *testing.T) {
	v1 := version{TS: 100 << 16, Node: "00000000000000aa"}
	v2 := version{TS: 200 << 16, Node: "00000000000000aa"}
	v2b := version{TS: 200 << 16, Node: "00000000000000bb"}
	cases := []struct {
		name                                  string
		history                               []op
		states                                []nodeState
		lost, resurrected, diverged, phantoms int
	}{{
		name: "everything kept",
		history: []op{
			acked(opSet, "u/0/0/1", "a", version{}),
			acked(opSet, "d/0/0/2", "b", version{}),
			acked(opDel, "d/0/0/2", "", version{}),
			acked(opSet, "s/1", "c", v1),
			acked(opSet, "s/1", "d", v2),
			{Kind: opSet, Key: "u/0/0/3", Value: "e", Outcome: unknown},
		},
		states: []nodeState{
			state(map[string]keyState{"u/0/0/1": {Value: "a"}, "s/1": {Value: "d"}}, map[string]version{"s/1": v2}),
			state(map[string]keyState{"u/0/0/1": {Value: "a"}, "s/1": {Value: "d"}}, map[string]version{"s/1": v2}),
		},
	}, {
		name:    "acknowledged unique write missing",
		history: []op{acked(opSet, "u/0/0/1", "a", version{})},
		states:  []nodeState{state(nil, nil)},
		lost:    1,
	}, {
		name:    "acknowledged unique write with another value",
		history: []op{acked(opSet, "u/0/0/1", "a", version{}), {Kind: opSet, Key: "u/0/0/1", Value: "x", Outcome: unknown}},
		states:  []nodeState{state(map[string]keyState{"u/0/0/1": {Value: "x"}}, nil)},
		lost:    1,
	}, {
		name:        "deleted key back",
		history:     []op{acked(opSet, "d/0/0/1", "a", version{}), acked(opDel, "d/0/0/1", "", version{})},
		states:      []nodeState{state(map[string]keyState{"d/0/0/1": {Value: "a"}}, nil)},
		resurrected: 1,
	}, {
		name:    "delete found nothing after an acknowledged write",
		history: []op{acked(opSet, "d/0/0/1", "a", version{}), {Kind: opDel, Key: "d/0/0/1", Outcome: ok, Deleted: 0}},
		states:  []nodeState{state(nil, nil)},
		lost:    1,
	}, {
		name:    "shared key at an older version than an acknowledged write",
		history: []op{acked(opSet, "s/1", "c", v1), acked(opSet, "s/1", "d", v2)},
		states:  []nodeState{state(map[string]keyState{"s/1": {Value: "c"}}, map[string]version{"s/1": v1})},
		lost:    1,
	}, {
		name:    "shared key at the winner's version with another value",
		history: []op{acked(opSet, "s/1", "c", v1), acked(opSet, "s/1", "d", v2)},
		states:  []nodeState{state(map[string]keyState{"s/1": {Value: "c"}}, map[string]version{"s/1": v2})},
		lost:    1,
	}, {
		name:        "shared key back after a newer delete",
		history:     []op{acked(opSet, "s/1", "c", v1), acked(opDel, "s/1", "", v2)},
		states:      []nodeState{state(map[string]keyState{"s/1": {Value: "c"}}, map[string]version{"s/1": v1})},
		resurrected: 1,
	}, {
		name:    "a shared key whose newest write, a delete, was collected",
		history: []op{acked(opSet, "s/1", "c", v1), acked(opDel, "s/1", "", v2)},
		states:  []nodeState{state(nil, map[string]version{"s/1": {Node: "0000000000000000"}})},
	}, {
		name:    "a shared key collected though its newest write is a SET",
		history: []op{acked(opDel, "s/1", "", v1), acked(opSet, "s/1", "c", v2)},
		states:  []nodeState{state(nil, map[string]version{"s/1": {Node: "0000000000000000"}})},
		lost:    1,
	}, {
		name:    "a write superseded by a newer one on another node is not lost",
		history: []op{acked(opSet, "s/1", "c", v2), acked(opSet, "s/1", "d", v2b)},
		states:  []nodeState{state(map[string]keyState{"s/1": {Value: "d"}}, map[string]version{"s/1": v2b})},
	}, {
		name:    "nodes disagree",
		history: []op{acked(opSet, "s/1", "c", v1), acked(opSet, "s/1", "d", v2)},
		states: []nodeState{
			state(map[string]keyState{"s/1": {Value: "d"}}, map[string]version{"s/1": v2}),
			state(map[string]keyState{"s/1": {Value: "d", ExpireAt: 5}}, map[string]version{"s/1": v2}),
		},
		diverged: 1,
	}, {
		name:    "a tombstone one node still holds and another collected is no divergence",
		history: []op{acked(opSet, "s/1", "c", v1), acked(opDel, "s/1", "", v2)},
		states: []nodeState{
			state(nil, map[string]version{"s/1": v2}),
			state(nil, map[string]version{"s/1": {Node: "0000000000000000"}}),
		},
	}, {
		name:    "a value one node holds and another lacks is divergence",
		history: []op{acked(opSet, "s/1", "c", v1)},
		states: []nodeState{
			state(map[string]keyState{"s/1": {Value: "c"}}, map[string]version{"s/1": v1}),
			state(nil, map[string]version{"s/1": {Node: "0000000000000000"}}),
		},
		lost:     1,
		diverged: 2,
	}, {
		name:     "a value nobody wrote",
		history:  []op{acked(opSet, "u/0/0/1", "a", version{})},
		states:   []nodeState{state(map[string]keyState{"u/0/0/1": {Value: "a"}, "u/9/9/9": {Value: "z"}}, nil)},
		phantoms: 1,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := check(c.history, c.states, clockHistory{}, nil)
			if v.Lost != c.lost || v.Resurrected != c.resurrected || v.Diverged != c.diverged || v.Phantoms != c.phantoms {
				t.Errorf("got %s; want %d lost, %d resurrected, %d diverged, %d phantom", v.describe(), c.lost, c.resurrected, c.diverged, c.phantoms)
			}
			if v.ok() != (c.lost+c.resurrected+c.diverged+c.phantoms == 0) {
				t.Errorf("ok() = %v for %s", v.ok(), v.describe())
			}
		})
	}
}

// The same seed gives the same schedule.
func TestScheduleReplays(t *testing.T) {
	a, b := newSchedule(42, 5, allFaults, 8*time.Second, 16*time.Second), newSchedule(42, 5, allFaults, 8*time.Second, 16*time.Second)
	for i := range 50 {
		ra, rb := a.next(), b.next()
		if len(ra.Faults) == 0 {
			t.Fatalf("round %d has no fault", i)
		}
		for j := range ra.Faults {
			if j >= len(rb.Faults) || ra.Faults[j].String() != rb.Faults[j].String() {
				t.Fatalf("round %d differs: %v vs %v", i, ra.Faults, rb.Faults)
			}
			if f := ra.Faults[j]; f.End <= f.Start || f.End > ra.Length {
				t.Fatalf("round %d: fault %v outside its round of %v", i, f, ra.Length)
			}
		}
	}
}

// A node holding another's version further ahead of its own clock than the
// bound took a version it should have refused; one within the bound, or its
// own, or one its clock's offset at the time allowed, is fine.
func TestCheckerSkew(t *testing.T) {
	const bound = 8 * time.Second
	ms := func(t time.Time) int64 { return t.UnixMilli() << 16 }
	a, b := "00000000000000aa", "00000000000000bb"
	// Node 0 (a) runs 12 s ahead from t0+10s; node 1 (b) is on time.
	clocks := clockHistory{MaxSkew: bound, Spans: [][]clockSpan{
		{{From: t0, Offset: 0}, {From: t0.Add(10 * time.Second), Offset: 12 * time.Second}},
		{{From: t0, Offset: 0}},
	}}
	write := func(node int, id string, at time.Time, ts int64) op {
		return op{Node: node, Kind: opSet, Key: "s/1", Value: "x", Invoke: at, Done: at.Add(time.Millisecond), Outcome: ok, Version: version{ts, id}}
	}
	read := func(node int, at time.Time, v version) op {
		return op{Node: node, Kind: opRead, Key: "s/1", Invoke: at, Done: at.Add(time.Millisecond), Outcome: ok, Version: v}
	}
	skewed := write(0, a, t0.Add(11*time.Second), ms(t0.Add(23*time.Second))) // 12 s ahead
	onTime := write(1, b, t0.Add(11*time.Second), ms(t0.Add(11*time.Second)))
	cases := []struct {
		name string
		h    []op
		want int
	}{
		{"skewed version read on its own node", []op{skewed, onTime, read(0, t0.Add(12*time.Second), skewed.Version)}, 0},
		{"skewed version adopted 11 s ahead", []op{skewed, onTime, read(1, t0.Add(12*time.Second), skewed.Version)}, 1},
		{"skewed version adopted once time caught up", []op{skewed, onTime, read(1, t0.Add(15*time.Second), skewed.Version)}, 0},
		{"on-time version on the skewed node", []op{skewed, onTime, read(0, t0.Add(12*time.Second), onTime.Version)}, 0},
		{"a version from an unknown write", []op{onTime, read(1, t0.Add(12*time.Second), version{ms(t0.Add(30 * time.Second)), a})}, 1},
		{"a node ahead itself may take what its clock allowed", []op{skewed, onTime,
			read(0, t0.Add(12*time.Second), version{ms(t0.Add(29 * time.Second)), b})}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := check(c.h, nil, clocks, nil)
			if v.SkewAdopted != c.want {
				t.Errorf("got %s; want %d adopted beyond the bound", v.describe(), c.want)
			}
			if v.ok() != (c.want == 0) {
				t.Errorf("ok() = %v for %s", v.ok(), v.describe())
			}
		})
	}
}
