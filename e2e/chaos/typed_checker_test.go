package chaos

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// encodeElems is a typed key's elements as one comparable string: a JSON
// object (sorted by name) of member to "" (set), field to value (hash) or
// member to score (sorted set), or a list's values, in order, as a JSON
// array.
func encodeElems(typ string, reply []any) (string, error) {
	m := map[string]string{}
	switch typ {
	case "list":
		vs := make([]string, len(reply))
		for i, x := range reply {
			s, ok := x.(string)
			if !ok {
				return "", fmt.Errorf("LRANGE replied %#v", reply)
			}
			vs[i] = s
		}
		b, err := json.Marshal(vs)
		return string(b), err
	case "set":
		for _, x := range reply {
			s, ok := x.(string)
			if !ok {
				return "", fmt.Errorf("SMEMBERS replied %#v", reply)
			}
			m[s] = ""
		}
	case "hash", "zset":
		if len(reply)%2 != 0 {
			return "", fmt.Errorf("%s replied %d items", typ, len(reply))
		}
		for i := 0; i < len(reply); i += 2 {
			k, ok1 := reply[i].(string)
			v, ok2 := reply[i+1].(string)
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%s replied %#v", typ, reply)
			}
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// elems reads encodeElems's string back.
func (ks keyState) elems() map[string]string {
	m := map[string]string{}
	_ = json.Unmarshal([]byte(ks.Value), &m)
	return m
}

// typedClasses are the key classes of typed_workload_test.go, with the
// Redis type each holds (tdel/ keys hold any).
var typedClasses = map[string]string{"cnt": "string", "set": "set", "hash": "hash", "zset": "zset", "list": "list", "tdel": ""}

func keyClass(key string) string {
	class, _, _ := strings.Cut(key, "/")
	return class
}

func isTyped(key string) bool {
	_, ok := typedClasses[keyClass(key)]
	return ok
}

// checkTyped holds one node's typed keys against the history: every key the
// workload wrote and every typed key the node holds.
func checkTyped(v *verdict, node int, st nodeState, byKey map[string][]op, cuts []cut) {
	keys := map[string]bool{}
	for k := range byKey {
		if isTyped(k) {
			keys[k] = true
		}
	}
	for k := range st.keys {
		if isTyped(k) {
			keys[k] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		ops := byKey[key]
		got, present := st.keys[key]
		class := keyClass(key)
		if want := typedClasses[class]; present && want != "" && got.Type != want {
			v.Phantoms++
			v.problem("phantom: node %d holds %s as a %s", node, key, got.Type)
			continue
		}
		switch class {
		case "cnt":
			checkSum(v, node, key, "", ops, got.Value, present)
		case "tdel":
			checkTypedDeleted(v, node, key, ops, present)
		case "list":
			checkList(v, node, key, ops, got)
		default:
			checkElems(v, node, key, ops, got.elems(), cuts)
		}
	}
}

// checkSum holds a counter (or a counting field or member, elem) against
// the increments made to it: its value is the sum of the acknowledged ones
// plus some of those whose fate is unknown, so it lies in [acknowledged +
// the unknown negative ones, acknowledged + the unknown positive ones]. A
// value other than a whole number (a count gone wrong) is a mismatch too.
func checkSum(v *verdict, node int, key, elem string, ops []op, value string, present bool) {
	var acked, lo, hi int64
	tried, wrote := false, false
	for _, o := range ops {
		if o.Elem != elem || (o.Kind != opIncr && o.Kind != opHIncr && o.Kind != opZIncr) {
			continue
		}
		switch o.Outcome {
		case ok:
			acked += o.Delta
			tried, wrote = true, true
		case unknown:
			lo, hi = lo+min(0, o.Delta), hi+max(0, o.Delta)
			tried = true
		}
	}
	what := key
	if elem != "" {
		what += " " + elem
	}
	if !present {
		if wrote {
			v.Lost++
			v.problem("lost: node %d has no %s after acknowledged increments summing to %d", node, what, acked)
		}
		return
	}
	if !tried {
		v.Phantoms++
		v.problem("phantom: node %d holds %s = %s, which no client incremented", node, what, value)
		return
	}
	f, err := strconv.ParseFloat(value, 64)
	if err != nil || f != math.Trunc(f) || int64(f) < acked+lo || int64(f) > acked+hi {
		v.CounterMismatches++
		v.problem("counter: node %d has %s = %s; acknowledged increments sum to %d, unknown ones could add [%d, %d]", node, what, value, acked, lo, hi)
	}
}

// checkTypedDeleted holds a tdel/ key to its two writes: made by one typed
// write, then deleted by the same client.
func checkTypedDeleted(v *verdict, node int, key string, ops []op, present bool) {
	var made *op
	delAttempted := false
	for i, o := range ops {
		switch {
		case o.Kind == opDel:
			delAttempted = true
			if o.Outcome != ok {
				continue
			}
			if o.Deleted != 1 {
				v.Lost++
				v.problem("lost: %v found no key after %v was acknowledged", o, made)
			}
			if present {
				v.Resurrected++
				v.problem("resurrected: node %d has %s after acknowledged %v", node, key, o)
			}
		case o.Outcome == ok:
			made = &ops[i]
		}
	}
	switch {
	case made != nil && !delAttempted && !present:
		v.Lost++
		v.problem("lost: node %d has no %s after acknowledged %v", node, key, *made)
	case present && len(ops) == 0:
		v.Phantoms++
		v.problem("phantom: node %d holds %s, which no client wrote", node, key)
	}
}

// makesDot reports whether o, acknowledged, added an element with a dot of
// its own: every add does, an SADD of a member present (which answers 0)
// and a ZADD of the score the member has (ZADD CH answers 0) too, so that
// it wins over removes that did not see it.
func makesDot(o op) bool {
	return o.Kind == opHSet || o.Kind == opSAdd || o.Kind == opZAdd
}

// cut is a symmetric partition between groups A and B, in force from From
// to To: nothing one side wrote in that time reached the other before To.
type cut struct {
	A, B     []int
	From, To time.Time
}

// apart reports whether nodes x and y were cut off from each other from
// from to to.
func apart(cuts []cut, x, y int, from, to time.Time) bool {
	for _, c := range cuts {
		if c.From.After(from) || c.To.Before(to) {
			continue
		}
		if slices.Contains(c.A, x) && slices.Contains(c.B, y) || slices.Contains(c.A, y) && slices.Contains(c.B, x) {
			return true
		}
	}
	return false
}

// checkElems holds a set, hash or sorted set to the writes of its
// elements, element by element. Adds win over concurrent removes, and a
// remove takes only what its node had seen:
//
//   - an acknowledged add is present unless a remove of the element may
//     have seen it: one acknowledged (and removing something) after the add
//     was invoked, at a node not cut off from the add's the whole time
//     (cuts), or one whose fate is unknown (it may still have run later);
//   - a present element needs an add (acknowledged with a dot, or of unknown
//     fate) that no later write of the element surely overrode: a remove or
//     add acknowledged at the same node after it was acknowledged;
//   - and its value (a hash field's, a member's score) is such an add's.
//
// Counting fields and members (HINCRBY, ZINCRBY) are held to checkSum.
func checkElems(v *verdict, node int, key string, ops []op, elems map[string]string, cuts []cut) {
	byElem := map[string][]op{}
	for _, o := range ops {
		if o.Outcome != failed {
			byElem[o.Elem] = append(byElem[o.Elem], o)
		}
	}
	names := map[string]bool{}
	for e := range byElem {
		names[e] = true
	}
	for e := range elems {
		names[e] = true
	}
	for _, e := range slices.Sorted(maps.Keys(names)) {
		eops := byElem[e]
		val, present := elems[e]
		if strings.HasPrefix(e, "n") || strings.HasPrefix(e, "i") {
			checkSum(v, node, key, e, eops, val, present)
			continue
		}
		isRemove := func(o op) bool { return o.Kind == opSRem || o.Kind == opHDel || o.Kind == opZRem }
		isAdd := func(o op) bool { return o.Kind == opSAdd || o.Kind == opHSet || o.Kind == opZAdd }
		var survivors []op // adds no later write surely overrode
		for _, a := range eops {
			if !isAdd(a) {
				continue
			}
			if a.Outcome == ok && !present && makesDot(a) {
				mayBeRemoved := slices.ContainsFunc(eops, func(r op) bool {
					return isRemove(r) && (r.Outcome == unknown ||
						r.Reply > 0 && r.Done.After(a.Invoke) && !apart(cuts, a.Node, r.Node, a.Invoke, r.Done))
				})
				if !mayBeRemoved {
					v.Lost++
					v.problem("lost: node %d has no %s %s after acknowledged %v, which no remove can have seen", node, key, e, a)
				}
			}
			if a.Outcome == ok && !makesDot(a) {
				continue
			}
			overridden := a.Outcome == ok && slices.ContainsFunc(eops, func(w op) bool {
				return w.Outcome == ok && w.Node == a.Node && a.Done.Before(w.Invoke) &&
					(isRemove(w) && w.Reply > 0 || isAdd(w) && makesDot(w))
			})
			if !overridden {
				survivors = append(survivors, a)
			}
		}
		if !present {
			continue
		}
		if len(survivors) == 0 {
			if slices.ContainsFunc(eops, isAdd) {
				v.Resurrected++
				v.problem("resurrected: node %d holds %s %s = %q, whose every add a later write at its node overrode", node, key, e, val)
			} else {
				v.Phantoms++
				v.problem("phantom: node %d holds %s %s = %q, which no client added", node, key, e, val)
			}
			continue
		}
		if slices.ContainsFunc(survivors, func(a op) bool { return a.Kind == opSAdd }) {
			continue // a member has no value
		}
		if !slices.ContainsFunc(survivors, func(a op) bool { return elemValue(a) == val }) {
			v.Phantoms++
			v.problem("phantom: node %d holds %s %s = %q, the value of no add still standing (%d of them)", node, key, e, val, len(survivors))
		}
	}
}

// elemValue is the value add a gave its element, as a read shows it.
func elemValue(a op) string {
	if a.Kind == opZAdd {
		return strconv.FormatInt(a.Delta, 10)
	}
	return a.Value
}
