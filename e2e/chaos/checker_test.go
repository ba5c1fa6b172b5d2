package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// keyState is a live key as one node holds it.
type keyState struct {
	Type     string // TYPE
	Value    string // a string's value, or a typed key's elements (encodeElems)
	ExpireAt int64  // PEXPIRETIME: -1 without a deadline
	Versions string // MESH VERSION: both registers' versions
}

// nodeState is what one node holds once the faults healed.
type nodeState struct {
	keys   map[string]keyState
	shared map[string]version // every shared key's value register, tombstones too
}

// dump reads a node's whole keyspace: SCAN, then per key TYPE, and in one
// pipeline its contents (GET, SMEMBERS, HGETALL, ZRANGE WITHSCORES or
// LRANGE),
// PEXPIRETIME and MESH VERSION; and the version of every shared key.
func dump(ctx context.Context, c *redis.Client) (nodeState, error) {
	st := nodeState{keys: map[string]keyState{}, shared: map[string]version{}}
	var keys []string
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return st, fmt.Errorf("SCAN: %w", err)
	}
	keys = slices.Compact(slices.Sorted(slices.Values(keys))) // SCAN may return a key twice
	for chunk := range slices.Chunk(keys, 500) {
		p := c.Pipeline()
		types := make([]*redis.StatusCmd, len(chunk))
		for i, k := range chunk {
			types[i] = p.Type(ctx, k)
		}
		if _, err := p.Exec(ctx); err != nil {
			return st, fmt.Errorf("read types: %w", err)
		}
		p = c.Pipeline()
		reads := make([]*redis.Cmd, len(chunk))
		exps := make([]*redis.Cmd, len(chunk))
		vers := make([]*redis.Cmd, len(chunk))
		for i, k := range chunk {
			switch types[i].Val() {
			case "string":
				reads[i] = p.Do(ctx, "GET", k)
			case "set":
				reads[i] = p.Do(ctx, "SMEMBERS", k)
			case "hash":
				reads[i] = p.Do(ctx, "HGETALL", k)
			case "zset":
				reads[i] = p.Do(ctx, "ZRANGE", k, 0, -1, "WITHSCORES")
			case "list":
				reads[i] = p.Do(ctx, "LRANGE", k, 0, -1)
			case "none":
				continue // deleted or expired since SCAN saw it
			default:
				return st, fmt.Errorf("%s has type %s, which the workload never writes", k, types[i].Val())
			}
			exps[i] = p.Do(ctx, "PEXPIRETIME", k)
			vers[i] = p.Do(ctx, "MESH", "VERSION", k)
		}
		if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
			return st, fmt.Errorf("read keys: %w", err)
		}
		for i, k := range chunk {
			if reads[i] == nil {
				continue
			}
			raw, err := reads[i].Result()
			if err == redis.Nil {
				continue
			}
			if err != nil {
				return st, fmt.Errorf("read %s: %w", k, err)
			}
			ks := keyState{Type: types[i].Val()}
			switch v := raw.(type) {
			case string:
				ks.Value = v
			case []any:
				if ks.Value, err = encodeElems(ks.Type, v); err != nil {
					return st, fmt.Errorf("read %s: %w", k, err)
				}
			default:
				return st, fmt.Errorf("read %s: reply %#v", k, raw)
			}
			if ks.ExpireAt, err = exps[i].Int64(); err != nil {
				return st, fmt.Errorf("PEXPIRETIME %s: %w", k, err)
			}
			ks.Versions = fmt.Sprint(vers[i].Val())
			st.keys[k] = ks
		}
	}
	for k := range sharedKeys {
		key := fmt.Sprintf("s/%d", k)
		raw, err := c.Do(ctx, "MESH", "VERSION", key).Result()
		if err != nil {
			return st, fmt.Errorf("MESH VERSION %s: %w", key, err)
		}
		if st.shared[key], err = parseVersion(raw); err != nil {
			return st, err
		}
	}
	return st, nil
}

// verdict is the checker's finding.
type verdict struct {
	Acknowledged int // acknowledged writes and deletes
	Lost         int // acknowledged, yet neither on the nodes nor superseded
	Resurrected  int // acknowledged deletes whose key is back
	Diverged     int // keys on which the nodes disagree
	Phantoms     int // values no client ever wrote
	SkewAdopted  int // reads that found another node's version beyond the reader's clock and the bound
	// CounterMismatches are counters, counting fields and members whose
	// value is not the sum of the acknowledged increments and some of
	// those of unknown fate.
	CounterMismatches int
	// ClockBackwards are a node's writes whose version was not above that
	// of a write the node acknowledged before they began.
	ClockBackwards int
	// Misordered are pairs of list values in an order their node's writes
	// could not have given them.
	Misordered int
	Problems   []string // the first few of each, described
}

func (v *verdict) problem(format string, args ...any) {
	if len(v.Problems) < 40 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

func (v *verdict) ok() bool {
	return v.Lost == 0 && v.Resurrected == 0 && v.Diverged == 0 && v.Phantoms == 0 && v.SkewAdopted == 0 &&
		v.CounterMismatches == 0 && v.ClockBackwards == 0 && v.Misordered == 0
}

func (o op) String() string {
	s := fmt.Sprintf("%v %s", o.Kind, o.Key)
	if o.Elem != "" && o.Kind != opLSet {
		s += " " + o.Elem
	}
	switch o.Kind {
	case opSet, opHSet:
		s += " " + o.Value
	case opIncr, opHIncr, opZIncr, opZAdd:
		s += fmt.Sprintf(" %d", o.Delta)
	case opLPush, opRPush, opLInsert:
		s += " " + o.Value
	case opLSet:
		s += fmt.Sprintf(" %d %s (over %q)", o.Index, o.Value, o.Elem)
	case opLPop, opRPop:
		if o.Outcome == ok && o.Reply > 0 {
			s += fmt.Sprintf(" -> %q", o.Value)
		}
	}
	if o.Kind >= opIncr && o.Kind != opLPop && o.Kind != opRPop && o.Kind != opLSet && o.Outcome == ok {
		s += fmt.Sprintf(" -> %d", o.Reply)
	}
	if o.TTL {
		s += " PX"
	}
	s += fmt.Sprintf(" at node %d worker %d, %s..%s", o.Node, o.Worker,
		o.Invoke.Format("15:04:05.000"), o.Done.Format("15:04:05.000"))
	if o.Kind == opDel {
		s += fmt.Sprintf(" deleted %d", o.Deleted)
	}
	if o.Version != (version{}) {
		s += " version " + o.Version.String()
	}
	return s
}

// check judges a history against the nodes' final states. (Jepsen's own
// checkers are Clojure and know nothing of MESH VERSION; this one knows the
// workload's three key classes and the exact versions it recorded.)
func check(h []op, states []nodeState, clocks clockHistory, cuts []cut) verdict {
	var v verdict
	checkConverged(&v, states)
	checkSkew(&v, h, clocks)
	checkClockForward(&v, h)
	byKey := map[string][]op{}
	for _, o := range h {
		if o.Kind == opRead {
			continue
		}
		byKey[o.Key] = append(byKey[o.Key], o)
		if o.Outcome == ok {
			v.Acknowledged++
		}
	}
	if v.Diverged == 0 && len(states) > 1 {
		states = states[:1] // the others hold the same: count each finding once
	}
	for i, st := range states {
		checkPhantoms(&v, i, st, byKey)
		checkTyped(&v, i, st, byKey, cuts)
		for _, key := range slices.Sorted(maps.Keys(byKey)) {
			ops := byKey[key]
			switch {
			case strings.HasPrefix(key, "u/"):
				checkUnique(&v, i, st, ops)
			case strings.HasPrefix(key, "d/"):
				checkDeleted(&v, i, st, ops)
			case strings.HasPrefix(key, "s/"):
				checkShared(&v, i, st, ops)
			}
		}
	}
	return v
}

func checkConverged(v *verdict, states []nodeState) {
	if len(states) == 0 {
		return
	}
	first := states[0]
	for i, st := range states[1:] {
		for _, k := range slices.Sorted(maps.Keys(first.keys)) {
			if a, b := first.keys[k], st.keys[k]; a != b {
				v.Diverged++
				v.problem("diverged: %s is %+v on node 0, %+v on node %d", k, a, b, i+1)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(st.keys)) {
			if _, ok := first.keys[k]; !ok {
				v.Diverged++
				v.problem("diverged: %s is absent on node 0, %+v on node %d", k, st.keys[k], i+1)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(first.shared)) {
			_, liveA := first.keys[k]
			_, liveB := st.keys[k]
			if !liveA && !liveB {
				// Deleted on both: one may still hold the tombstone the
				// other has collected, which the Merkle digest leaves out
				// once it is collectable (both read as absent).
				continue
			}
			if a, b := first.shared[k], st.shared[k]; a != b {
				v.Diverged++
				v.problem("diverged: %s has version %v on node 0, %v on node %d", k, a, b, i+1)
			}
		}
	}
}

// checkPhantoms finds values no client wrote to their key.
func checkPhantoms(v *verdict, node int, st nodeState, byKey map[string][]op) {
	for _, k := range slices.Sorted(maps.Keys(st.keys)) {
		if isTyped(k) {
			continue // checkTyped's
		}
		found := false
		for _, o := range byKey[k] {
			if o.Kind == opSet && o.Value == st.keys[k].Value {
				found = true
				break
			}
		}
		if !found {
			v.Phantoms++
			v.problem("phantom: node %d holds %s = %q, which no client wrote", node, k, st.keys[k].Value)
		}
	}
}

func checkUnique(v *verdict, node int, st nodeState, ops []op) {
	for _, o := range ops {
		if o.Outcome != ok {
			continue
		}
		if got, ok := st.keys[o.Key]; !ok || got.Value != o.Value {
			v.Lost++
			v.problem("lost: node %d has %s = %q after acknowledged %v", node, o.Key, got.Value, o)
		}
	}
}

func checkDeleted(v *verdict, node int, st nodeState, ops []op) {
	var set *op
	delAttempted := false
	for i, o := range ops {
		switch {
		case o.Kind == opSet && o.Outcome == ok:
			set = &ops[i]
		case o.Kind == opDel:
			delAttempted = true
			if o.Outcome != ok {
				continue
			}
			if o.Deleted != 1 {
				v.Lost++
				v.problem("lost: %v found no key after its SET was acknowledged", o)
			}
			if got, present := st.keys[o.Key]; present {
				v.Resurrected++
				v.problem("resurrected: node %d has %s = %q after acknowledged %v", node, o.Key, got.Value, o)
			}
		}
	}
	if set != nil && !delAttempted {
		if got, ok := st.keys[set.Key]; !ok || got.Value != set.Value {
			v.Lost++
			v.problem("lost: node %d has %s = %q after acknowledged %v", node, set.Key, got.Value, *set)
		}
	}
}

// checkShared holds a shared key's final state against every acknowledged
// write to it: none may carry a higher version than the final one, and the
// write whose version is the final one must be what the node holds.
func checkShared(v *verdict, node int, st nodeState, ops []op) {
	key := ops[0].Key
	final := st.shared[key]
	got, present := st.keys[key]
	if final.TS == 0 && !present {
		// No register at all: a delete's tombstone, collected once every
		// node had it. The newest acknowledged write must then be a delete,
		// or a delete of unknown fate may have come after it.
		var top *op
		unknownDel := false
		for i, o := range ops {
			switch {
			case o.Kind == opDel && o.Outcome == unknown:
				unknownDel = true
			case o.Outcome == ok && (o.Kind == opSet || o.Deleted == 1) && (top == nil || top.Version.less(o.Version)):
				top = &ops[i]
			}
		}
		if top != nil && top.Kind == opSet && !unknownDel {
			v.Lost++
			v.problem("lost: node %d holds nothing of %s (a collected delete) after acknowledged %v, the newest write", node, key, *top)
		}
		return
	}
	for _, o := range ops {
		if o.Outcome != ok || o.Kind == opDel && o.Deleted == 0 {
			continue // a DEL that found nothing wrote nothing
		}
		switch {
		case final.less(o.Version):
			if o.Kind == opDel && present {
				v.Resurrected++
				v.problem("resurrected: node %d has %s = %q at version %v, older than acknowledged %v", node, key, got.Value, final, o)
			} else {
				v.Lost++
				v.problem("lost: node %d has %s at version %v, older than acknowledged %v", node, key, final, o)
			}
		case final == o.Version && o.Kind == opSet && (!present || got.Value != o.Value):
			v.Lost++
			v.problem("lost: node %d has %s = %q (present %v) at the version of acknowledged %v", node, key, got.Value, present, o)
		case final == o.Version && o.Kind == opDel && present:
			v.Resurrected++
			v.problem("resurrected: node %d has %s = %q at the version of acknowledged %v", node, key, got.Value, o)
		}
	}
}

// describe is the verdict in a few lines.
func (v verdict) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d acknowledged, %d lost, %d resurrected, %d diverged, %d phantom, %d adopted beyond the clock bound, %d counter mismatches, %d versions behind an earlier write's, %d list values misordered",
		v.Acknowledged, v.Lost, v.Resurrected, v.Diverged, v.Phantoms, v.SkewAdopted, v.CounterMismatches, v.ClockBackwards, v.Misordered)
	for _, p := range v.Problems {
		b.WriteString("\n  " + p)
	}
	return b.String()
}

// clockSpan is a stretch of a node's life with one clock offset, from its
// start on (until the next span's start).
type clockSpan struct {
	From   time.Time
	Offset time.Duration
}

// clockHistory is what the checker knows of the nodes' clocks: each node's
// spans, in order, and the bound every node enforces.
type clockHistory struct {
	Spans   [][]clockSpan
	MaxSkew time.Duration
}

// maxWall is the furthest node's wall clock read between from and to.
func (c clockHistory) maxWall(node int, from, to time.Time) time.Time {
	var best time.Time
	spans := c.Spans[node]
	for i, s := range spans {
		end := to
		if i+1 < len(spans) && spans[i+1].From.Before(end) {
			end = spans[i+1].From
		}
		if end.Before(from) || s.From.After(to) {
			continue
		}
		if w := end.Add(s.Offset); w.After(best) {
			best = w
		}
	}
	return best
}

// checkSkew holds every version a node was read holding against that node's
// clock: a node refuses another's version further ahead of its own wall
// clock than the bound, so a version it holds was at most that far ahead of
// its clock when it took it. The node took it after its writer made it (the
// acknowledged write with that version, if the history has it) and before
// the read answered; its clock (with whatever offset it had then) read at
// most maxWall in that time. A node's own versions follow its own clock and
// are not held to this.
func checkSkew(v *verdict, h []op, clocks clockHistory) {
	if len(clocks.Spans) == 0 {
		return
	}
	owner := map[string]int{} // version node -> harness node: from its own acknowledged writes
	made := map[version]op{}  // acknowledged shared writes by the version they took
	for _, o := range h {
		// A DEL that found nothing wrote nothing: its version is an older write's.
		wrote := o.Kind == opSet || o.Kind == opDel && o.Deleted == 1
		if wrote && o.Outcome == ok && o.Version.TS != 0 {
			owner[o.Version.Node] = o.Node
			made[o.Version] = o
		}
	}
	for _, o := range h {
		if o.Kind != opRead || o.Outcome != ok || o.Version.TS == 0 {
			continue // a key never written reads as version 0
		}
		if w, known := owner[o.Version.Node]; known && w == o.Node {
			continue
		}
		var from time.Time // unknown write: any time since the run began
		if w, ok := made[o.Version]; ok && !w.Invoke.After(o.Done) {
			from = w.Invoke
		}
		wall := clocks.maxWall(o.Node, from, o.Done)
		ahead := time.Duration(o.Version.TS>>16)*time.Millisecond - time.Duration(wall.UnixMilli())*time.Millisecond
		if ahead > clocks.MaxSkew {
			v.SkewAdopted++
			writer := "an unknown node"
			if w, known := owner[o.Version.Node]; known {
				writer = fmt.Sprintf("node %d", w)
			}
			v.problem("adopted beyond the bound: %v found the version of %s %v ahead of node %d's clock (bound %v)", o, writer, ahead, o.Node, clocks.MaxSkew)
		}
	}
}
