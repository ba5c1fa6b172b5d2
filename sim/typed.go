package sim

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/redmesh/redmesh/longdouble"
	"github.com/redmesh/redmesh/record"
)

// Typed commands: what a client's HSET, HDEL, HINCRBY, SADD, SREM, INCRBY,
// SET and DEL do at a simulated node. Each decides as the node's command
// does (liveness, WRONGTYPE, which fields or members it touches) and builds
// its write with record.TypedOp or record.OverValue, the code the node's
// commands use, so the simulator applies the same deltas. Before applying,
// the command tells the checker what it added, what it observed and removes,
// and which increments it made or reset, read from the node's record as the
// command found it.

// commandArity is the commands the simulator runs: their least argument
// count (the name included), whether that count is also the most, and
// whether the rest are field-value pairs.
var commandArity = map[string]struct {
	min          int
	exact, pairs bool
}{
	"HSET": {4, false, true}, "HDEL": {3, false, false}, "HINCRBY": {4, true, false}, "HINCRBYFLOAT": {4, true, false},
	"SADD": {3, false, false}, "SREM": {3, false, false},
	"INCR": {2, true, false}, "INCRBY": {3, true, false}, "DECR": {2, true, false}, "DECRBY": {3, true, false},
	"SET": {3, true, false}, "DEL": {2, true, false}, "INCRBYFLOAT": {3, true, false},
	"ZADD": {4, false, true}, "ZINCRBY": {4, true, false}, "ZREM": {3, false, false},
	"LPUSH": {3, false, false}, "RPUSH": {3, false, false}, "LPOP": {2, true, false}, "RPOP": {2, true, false},
	"LINSERT": {5, true, false}, "LSET": {4, true, false},
}

// checkCommand checks a scripted command's shape: a known name, its
// arguments, integers where they must be.
func checkCommand(args []string) error {
	if len(args) == 0 {
		return errors.New("empty command")
	}
	name := strings.ToUpper(args[0])
	a, ok := commandArity[name]
	if !ok {
		return fmt.Errorf("command %q not simulated", args[0])
	}
	if n := len(args); n < a.min || a.exact && n != a.min || a.pairs && n%2 != 0 {
		return fmt.Errorf("%s: wrong number of arguments", name)
	}
	for _, s := range args[1:] {
		if len(s) == 0 || len(s) > 64000 {
			return fmt.Errorf("%s: empty or oversized argument", name)
		}
	}
	small := func(s string) bool {
		by, err := strconv.ParseInt(s, 10, 64)
		return err == nil && by >= -1<<32 && by <= 1<<32
	}
	switch name {
	case "HINCRBY", "INCRBY", "DECRBY", "HINCRBYFLOAT", "INCRBYFLOAT":
		// Small enough that no sum of a run's increments overflows; the
		// float ones integers too, so that every sum is exact.
		if !small(args[len(args)-1]) {
			return fmt.Errorf("%s: increment not an integer in ±2^32", name)
		}
	case "ZINCRBY":
		// Integers, so that every sum of scores is exact.
		if !small(args[2]) {
			return fmt.Errorf("%s: increment not an integer in ±2^32", name)
		}
	case "ZADD":
		for i := 2; i < len(args); i += 2 {
			if !small(args[i]) {
				return fmt.Errorf("%s: score not an integer in ±2^32", name)
			}
		}
	case "LSET":
		if !small(args[2]) {
			return fmt.Errorf("%s: index not an integer in ±2^32", name)
		}
	case "LINSERT":
		if w := strings.ToUpper(args[2]); w != "BEFORE" && w != "AFTER" {
			return fmt.Errorf("%s: BEFORE or AFTER", name)
		}
	}
	return nil
}

// typedCmd is one command being run at a node.
type typedCmd struct {
	s    *Sim
	n    *node
	id   uint32
	cur  record.Record
	live bool
	op   *record.TypedOp
	obs  typedOp // what it tells the checker
}

// version stamps the node's next write.
func (n *node) version() (record.Version, error) {
	ts, err := n.clock.Now()
	return record.Version{TS: ts, Node: n.id}, err
}

// command runs a client command at n. A command that writes is
// acknowledged once applied at n; one refused (node down, clock failure,
// WRONGTYPE, not an integer) or with nothing to do writes nothing.
func (s *Sim) command(n *node, args [][]byte) {
	if !n.up {
		s.ck.unavailable++
		return
	}
	name := strings.ToUpper(string(args[0]))
	key := args[1]
	id := s.keys.id(key)
	s.tr.grow(s.keys.len())
	c := &typedCmd{s: s, n: n, id: id, cur: n.st.get(id)}
	c.obs.key = id
	now := s.wall(n).UnixMilli()
	var rec record.Record
	var err error
	switch name {
	case "SET", "DEL":
		rec, err = c.overValue(name == "DEL", args, now)
	case "HSET", "HDEL", "HINCRBY", "HINCRBYFLOAT":
		rec, err = c.hash(name, args, now)
	case "SADD", "SREM":
		rec, err = c.set(name, args, now)
	case "ZADD", "ZINCRBY", "ZREM":
		rec, err = c.zset(name, args, now)
	case "LPUSH", "RPUSH", "LPOP", "RPOP", "LINSERT", "LSET":
		rec, err = c.list(name, args, now)
	default:
		rec, err = c.incr(name, args, now)
	}
	switch {
	case errors.Is(err, errClock):
		s.ck.unavailable++
		return
	case err != nil:
		s.ck.rejected++
		return
	case rec.Value.Version.IsZero() && rec.Typed.IsZero():
		return // nothing to write: HDEL of an absent field, SADD of a member there
	}
	s.ck.ackTyped(s, n, rec, &c.obs)
	s.applyLocal(n, id, rec)
}

var (
	errClock     = errors.New("clock refused")
	errWrongType = errors.New("WRONGTYPE")
	errNotInt    = errors.New("not an integer")
)

// begin starts a typed write as the node's beginTyped does.
func (c *typedCmd) begin(kind record.Kind, now int64) error {
	c.live = c.cur.Live(now)
	if c.live && c.cur.Kind() != kind {
		return errWrongType
	}
	v, err := c.n.version()
	if err != nil {
		return errClock
	}
	c.op = record.BeginTyped(c.cur, c.live, kind, v, func() (record.Version, error) {
		v, err := c.n.version()
		if err != nil {
			return v, errClock
		}
		return v, nil
	})
	if !c.live {
		c.obs.observeAll(c.s, c.cur)
	}
	return nil
}

func (c *typedCmd) hash(name string, args [][]byte, now int64) (record.Record, error) {
	if err := c.begin(record.KindHash, now); err != nil {
		return record.Record{}, err
	}
	cur := c.cur.Typed
	switch name {
	case "HSET":
		for i := 2; i < len(args); i += 2 {
			if err := c.setField(args[i], args[i+1]); err != nil {
				return record.Record{}, err
			}
		}
	case "HDEL":
		if !c.live {
			return record.Record{}, nil
		}
		done := map[string]bool{}
		for _, f := range args[2:] {
			if _, had := cur.FieldValue(f); had && !done[string(f)] {
				done[string(f)] = true
				c.obs.observe(c.s, c.cur, listFields, f)
				c.op.DelField(f)
			}
		}
		if len(done) == 0 {
			return record.Record{}, nil
		}
	case "HINCRBY", "HINCRBYFLOAT":
		by, _ := strconv.ParseInt(string(args[3]), 10, 64)
		v, had := cur.FieldValue(args[2])
		had = had && c.live
		old, err := c.oldValue(v, had, name == "HINCRBYFLOAT")
		if err != nil {
			return record.Record{}, err
		}
		e, _ := cur.Field(args[2])
		if name == "HINCRBY" && had && e.Dot.IsZero() {
			// As the node: a field with counts and no element (increments
			// a delete did not observe) gets a base, its counts kept.
			d, err := c.op.BaseField(args[2])
			if err != nil {
				return record.Record{}, err
			}
			c.obs.add(listFields, args[2], d, []byte("0"))
		}
		switch {
		case name == "HINCRBYFLOAT":
			// As the node: a field with no element (increments an HDEL
			// did not observe) gets one.
			if !had || e.Dot.IsZero() {
				if err := c.setField(args[2], []byte("0")); err != nil {
					return record.Record{}, err
				}
			}
			err = c.incrFloat(args[2], e.Value, had && !e.Dot.IsZero(), old, by)
		case had && cur.HasFloatCounts(args[2]):
			err = c.incrFloat(args[2], e.Value, true, old, by)
		default:
			if !had {
				if err := c.setField(args[2], []byte("0")); err != nil {
					return record.Record{}, err
				}
			}
			c.incrCounter(args[2], by)
		}
		if err != nil {
			return record.Record{}, err
		}
	}
	return c.op.Delta(), nil
}

// oldValue is a counter's value v (0 if not had) as an increment reads it:
// an integer, or for a float increment a long double.
func (c *typedCmd) oldValue(v []byte, had, float bool) (*big.Float, error) {
	if !had {
		return longdouble.New(), nil
	}
	if float {
		f, ok := longdouble.Parse(v)
		if !ok || f.IsInf() {
			return nil, errNotInt
		}
		return f, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return nil, errNotInt
	}
	return longdouble.New().SetInt64(n), nil
}

// incrFloat is an increment by of counter name (nil: the string's) as a
// float one, as the node's typedWrite.incrFloat: the counter moves from old
// to old + by exactly.
func (c *typedCmd) incrFloat(name, base []byte, had bool, old *big.Float, by int64) error {
	to, _ := longdouble.Parse([]byte(longdouble.Format(longdouble.New().Add(old, big.NewFloat(float64(by))))))
	c.countAs(name)
	if err := c.op.IncrFloat(name, base, had, to); err != nil {
		return err
	}
	c.obs.incs = append(c.obs.incs, incRec{name: string(name), counter: c.op.Counter, ver: c.op.V, by: by})
	return nil
}

func (c *typedCmd) setField(f, value []byte) error {
	c.obs.observe(c.s, c.cur, listFields, f)
	d, err := c.op.SetField(f, value)
	if err != nil {
		return err
	}
	c.obs.add(listFields, f, d, value)
	return nil
}

func (c *typedCmd) incrCounter(name []byte, by int64) {
	c.countAs(name)
	c.op.IncrCounter(name, by)
	c.obs.incs = append(c.obs.incs, incRec{name: string(name), counter: c.op.Counter, ver: c.op.V, by: by})
}

// countAs makes the write's increments of counter name count under the
// node's identity, noting an increment built on an older count of its own.
func (c *typedCmd) countAs(name []byte) {
	id := c.n.counterID()
	k := countKey{c.id, string(name), id, false}
	if c.cur.Typed.Count(name, id).Ver.Compare(c.s.ck.lastInc[k]) < 0 {
		c.s.ck.staleCounts++
	}
	c.s.ck.lastInc[k] = c.op.V
	c.op.Counter = id
}

// zset is ZADD (score-member pairs, no options), ZINCRBY and ZREM, as the
// node's commands decide and build them.
func (c *typedCmd) zset(name string, args [][]byte, now int64) (record.Record, error) {
	if err := c.begin(record.KindZSet, now); err != nil {
		return record.Record{}, err
	}
	cur := c.cur.Typed
	score := func(m []byte) (float64, bool) {
		if !c.live {
			return 0, false
		}
		return cur.Score(m)
	}
	wrote := false
	setScore := func(m []byte, v float64) error {
		c.obs.observe(c.s, c.cur, listScored, m)
		d, err := c.op.SetScore(m, v)
		if err != nil {
			return err
		}
		c.obs.add(listScored, m, d, record.ScoreValue(v))
		wrote = true
		return nil
	}
	switch name {
	case "ZADD":
		for i := 2; i < len(args); i += 2 {
			v, _ := strconv.ParseFloat(string(args[i]), 64)
			m := args[i+1]
			// As the node, a member at the score it has is added again
			// (a fresh dot that wins over a concurrent ZREM).
			if err := setScore(m, v); err != nil {
				return record.Record{}, err
			}
		}
	case "ZINCRBY":
		by, _ := strconv.ParseInt(string(args[2]), 10, 64)
		m := args[3]
		if _, ok := score(m); !ok {
			if err := setScore(m, 0); err != nil {
				return record.Record{}, err
			}
		}
		id := c.n.counterID()
		k := countKey{c.id, string(m), id, true}
		if cur.ScoreCount(m, id).Ver.Compare(c.s.ck.lastInc[k]) < 0 {
			c.s.ck.staleCounts++
		}
		c.s.ck.lastInc[k] = c.op.V
		c.op.Counter = id
		c.op.IncrScore(m, float64(by))
		c.obs.incs = append(c.obs.incs, incRec{name: string(m), counter: id, ver: c.op.V, by: by, score: true})
		wrote = true
	case "ZREM":
		done := map[string]bool{}
		for _, m := range args[2:] {
			if _, ok := score(m); !ok || done[string(m)] {
				continue
			}
			done[string(m)] = true
			c.obs.observe(c.s, c.cur, listScored, m)
			c.op.RemScored(m)
			wrote = true
		}
	}
	if !wrote {
		return record.Record{}, nil
	}
	return c.op.Delta(), nil
}

func (c *typedCmd) set(name string, args [][]byte, now int64) (record.Record, error) {
	if err := c.begin(record.KindSet, now); err != nil {
		return record.Record{}, err
	}
	cur := c.cur.Typed
	done := map[string]bool{}
	for _, m := range args[2:] {
		if done[string(m)] {
			continue
		}
		done[string(m)] = true
		if name == "SADD" {
			// A member held is added again, as the node does: its
			// older dots are removed, as observed.
			if c.live {
				c.obs.observe(c.s, c.cur, listMembers, m)
			}
			d, err := c.op.AddMember(m)
			if err != nil {
				return record.Record{}, err
			}
			c.obs.add(listMembers, m, d, nil)
			continue
		}
		if !c.live || !cur.HasMember(m) {
			delete(done, string(m))
			continue
		}
		c.obs.observe(c.s, c.cur, listMembers, m)
		c.op.RemMember(m)
	}
	if len(done) == 0 {
		return record.Record{}, nil
	}
	return c.op.Delta(), nil
}

// incr is INCR, INCRBY, DECR and DECRBY, as the node's incrBy.
func (c *typedCmd) incr(name string, args [][]byte, now int64) (record.Record, error) {
	by := int64(1)
	if len(args) == 3 {
		by, _ = strconv.ParseInt(string(args[2]), 10, 64)
	}
	if strings.HasPrefix(name, "DECR") {
		by = -by
	}
	live := c.cur.Live(now)
	if live && c.cur.Kind() != record.KindString {
		return record.Record{}, errWrongType
	}
	float := name == "INCRBYFLOAT"
	old, err := c.oldValue(c.cur.StringData(), live, float)
	if err != nil {
		return record.Record{}, err
	}
	if err := c.begin(record.KindString, now); err != nil {
		return record.Record{}, err
	}
	if !c.live {
		c.op.Rec.Value = record.Value{Version: c.op.V, Data: []byte("0")}
		c.op.Rec.Expiry = record.Expiry{Version: c.op.V}
	}
	if float || c.live && c.cur.Typed.HasFloatCounts(nil) {
		if c.live && (c.cur.Value.Tombstone || c.cur.Value.Version.IsZero()) {
			c.op.Rec.Value = record.Value{Version: c.op.V, Data: []byte("0")} // as the node
		}
		if err := c.incrFloat(nil, c.cur.CounterBase(), c.live, old, by); err != nil {
			return record.Record{}, err
		}
		return c.op.Delta(), nil
	}
	c.incrCounter(nil, by)
	return c.op.Delta(), nil
}

// overValue is SET and DEL: a write of the value register that removes and
// resets whatever typed state it observed.
func (c *typedCmd) overValue(del bool, args [][]byte, now int64) (record.Record, error) {
	if del && !c.cur.Live(now) {
		return record.Record{}, nil
	}
	v, err := c.n.version()
	if err != nil {
		return record.Record{}, errClock
	}
	rec := record.Record{Value: record.Value{Version: v, Tombstone: del}, Expiry: record.Expiry{Version: v}}
	if !del {
		rec.Value.Data = c.s.intern(args[2])
	}
	c.obs.observeAll(c.s, c.cur)
	return record.OverValue(c.cur, rec), nil
}

// Element lists, as the checker names them.
const (
	listFields uint8 = iota
	listMembers
	listScored
	listList
)

// elemLists are the element lists the checker reads.
var elemLists = []uint8{listFields, listMembers, listScored, listList}

// countKey names one node's count of one counter: a field's or the
// string's, or (score) a sorted-set member's.
type countKey struct {
	key     uint32
	name    string
	counter record.NodeID
	score   bool
}

// typedOp is what one acknowledged typed write did, as the checker needs it.
type typedOp struct {
	w    int32 // its writeRec: node and durability
	key  uint32
	adds []elemAdd
	// obs are the element dots it observed and removed; resets the counts
	// it observed and reset.
	obs    []record.Version
	resets []resetRec
	incs   []incRec
}

type elemAdd struct {
	list  uint8
	name  string
	dot   record.Version
	value string
}

type incRec struct {
	name    string
	counter record.NodeID // the count it went to (record.CounterID)
	ver     record.Version
	by      int64
	score   bool // a sorted-set member's ZINCRBY
}

// resetRec is a reset of counter name's count under identity counter: the
// increments up to ver were observed.
type resetRec struct {
	name    string
	counter record.NodeID
	ver     record.Version
	score   bool
}

func (o *typedOp) add(list uint8, name []byte, dot record.Version, value []byte) {
	for i := range o.adds {
		if o.adds[i].dot == dot { // the same command wrote the field again
			o.adds[i].value = string(value)
			return
		}
	}
	o.adds = append(o.adds, elemAdd{list: list, name: string(name), dot: dot, value: string(value)})
}

// observe notes the dots of element name that the command's node holds and
// the counts of its counter (a field's): a write of the element removes and
// resets exactly these.
func (o *typedOp) observe(s *Sim, cur record.Record, list uint8, name []byte) {
	for _, e := range elems(cur.Typed, list) {
		if bytes.Equal(e.Name, name) {
			o.obs = append(o.obs, e.Dot)
		}
	}
	switch list {
	case listFields:
		o.observeCounter(s, cur.Typed, string(name), false)
	case listScored:
		o.observeCounter(s, cur.Typed, string(name), true)
	}
}

// observeAll notes everything the node holds for the key: a SET, a DEL or a
// write that starts the key afresh removes and resets all of it.
func (o *typedOp) observeAll(s *Sim, cur record.Record) {
	t := cur.Typed
	for _, list := range elemLists {
		for _, e := range elems(t, list) {
			o.obs = append(o.obs, e.Dot)
		}
	}
	if t == nil {
		return
	}
	for _, score := range []bool{false, true} {
		seen := map[string]bool{}
		for _, c := range counts(t, score) {
			if !seen[string(c.Name)] {
				seen[string(c.Name)] = true
				o.observeCounter(s, t, string(c.Name), score)
			}
		}
	}
}

func (o *typedOp) observeCounter(s *Sim, t *record.Typed, name string, score bool) {
	if t == nil {
		return
	}
	for _, c := range counts(t, score) {
		if string(c.Name) == name && !c.Ver.IsZero() {
			o.resets = append(o.resets, resetRec{name: name, counter: c.Node, ver: c.Ver, score: score})
		}
	}
}

// counts is a state's counters' counts, or (score) its sorted-set members'.
func counts(t *record.Typed, score bool) []record.Count {
	if score {
		return t.ScoreCountList()
	}
	return t.CountList()
}

// elems is a typed state's fields, members or sorted-set members,
// read-only, as the checker reads them: element by element with their dots.
func elems(t *record.Typed, list uint8) []record.Elem {
	switch list {
	case listScored:
		return t.ScoredElements()
	case listList:
		return t.ListElements()
	}
	return t.Elements(list != listFields)
}

// scheduleTyped schedules a batch of random typed commands.
func (s *Sim) scheduleTyped(at int64, w *TypedWrite) {
	keys, elements := w.Keys, w.Elements
	if keys == 0 {
		keys = 4
	}
	if elements == 0 {
		elements = 4
	}
	over := int64(w.Over)
	s.timelineEnd = max(s.timelineEnd, at+over)
	s.mark(at, fmt.Sprintf("%d typed commands over %v", w.Count, time.Duration(w.Over)))
	for range w.Count {
		t := at
		if over > 0 {
			t += s.rng.Int64N(over + 1)
		}
		s.at(t, func() {
			sp, _ := w.Nodes.resolve(s.cfg.Nodes, len(s.nodes))
			if spansLen(sp) == 0 {
				s.ck.unavailable++
				return
			}
			n := s.nodes[spansAt(sp, s.rng.IntN(spansLen(sp)))]
			s.command(n, s.randomCommand(keys, elements, w.Overwrites, w.Floats))
		})
	}
}

// randomCommand draws one typed command. Values and increments are small
// integers, so that every field and string can be a counter's base.
func (s *Sim) randomCommand(keys, elements int, overwrites float64, floats bool) [][]byte {
	r := s.rng
	// incrName is an increment's command: with floats, half the time its
	// float form (drawn only then, so that other workloads draw as before).
	incrName := func(name string) string {
		if floats && r.IntN(2) == 0 {
			return name + "FLOAT"
		}
		return name
	}
	kind := r.IntN(5)
	key := fmt.Appendf(nil, "%s:%04d", [...]string{"hash", "set", "counter", "zset", "list"}[kind], r.IntN(keys))
	num := func(lo, hi int) []byte { return strconv.AppendInt(nil, int64(lo+r.IntN(hi-lo+1)), 10) }
	if r.Float64() < overwrites {
		if r.IntN(3) == 0 {
			return [][]byte{[]byte("SET"), key, num(0, 99)}
		}
		return [][]byte{[]byte("DEL"), key}
	}
	elem := func(prefix string) []byte { return fmt.Appendf(nil, "%s%d", prefix, r.IntN(elements)) }
	// A third of HSETs, HDELs, SADDs and SREMs name two elements (maybe the
	// same twice): each element a write adds takes a dot of its own.
	two := func(cmd string, prefix string, value bool) [][]byte {
		args := [][]byte{[]byte(cmd), key}
		for range 1 + r.IntN(3)/2 {
			args = append(args, elem(prefix))
			if value {
				args = append(args, num(0, 99))
			}
		}
		return args
	}
	switch kind {
	case 0:
		switch x := r.IntN(10); {
		case x < 4:
			return two("HSET", "f", true)
		case x < 6:
			return two("HDEL", "f", false)
		default:
			return [][]byte{[]byte(incrName("HINCRBY")), key, elem("f"), num(-3, 7)}
		}
	case 1:
		if r.IntN(10) < 6 {
			return two("SADD", "m", false)
		}
		return two("SREM", "m", false)
	case 4:
		return s.randomListCommand(key, elements)
	case 3:
		switch x := r.IntN(10); {
		case x < 4:
			args := [][]byte{[]byte("ZADD"), key}
			for range 1 + r.IntN(3)/2 {
				args = append(args, num(0, 9), elem("z")) // few scores: ZADDs that change nothing too
			}
			return args
		case x < 7:
			return [][]byte{[]byte("ZINCRBY"), key, num(-3, 7), elem("z")}
		default:
			return two("ZREM", "z", false)
		}
	}
	return [][]byte{[]byte(incrName("INCRBY")), key, num(-3, 7)}
}
