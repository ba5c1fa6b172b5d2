package sim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Scenario is a timeline of what happens to a mesh: client writes,
// partitions and their healing, crashes and restarts, nodes joining and
// leaving, clock skew. Built-in scenarios are made by Builtin; others are read
// from a YAML or JSON file by ParseScenario. Fields left zero take the run's
// Config.
type Scenario struct {
	Name        string   `yaml:"name" json:"name"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Nodes       int      `yaml:"nodes,omitempty" json:"nodes,omitempty"`
	Keys        int      `yaml:"keys,omitempty" json:"keys,omitempty"`
	Fsync       Fsync    `yaml:"fsync,omitempty" json:"fsync,omitempty"`
	Loss        *float64 `yaml:"loss,omitempty" json:"loss,omitempty"`
	// ForgetAfter is the nodes' --forget-after (default off).
	ForgetAfter Duration `yaml:"forget_after,omitempty" json:"forget_after,omitempty"`
	Events      []Event  `yaml:"events" json:"events"`
}

// Event is one step of a timeline: exactly one of its actions, at At.
type Event struct {
	At Duration `yaml:"at" json:"at"`
	// Write issues Count client writes at random nodes of Nodes, spread
	// evenly at random over [At, At+Over].
	Write *Write `yaml:"write,omitempty" json:"write,omitempty"`
	// Set and Del are single writes, for scripts.
	Set *Set `yaml:"set,omitempty" json:"set,omitempty"`
	Del *Del `yaml:"del,omitempty" json:"del,omitempty"`
	// Typed issues Count random commands on hashes, sets and counters.
	Typed *TypedWrite `yaml:"typed,omitempty" json:"typed,omitempty"`
	// Command is one client command at one node, for scripts.
	Command *Command `yaml:"command,omitempty" json:"command,omitempty"`
	// Partition splits the mesh: each listed group is cut off from every
	// other and from the nodes not listed (who form one group of their
	// own). It replaces any earlier partition.
	Partition []NodeSet `yaml:"partition,omitempty" json:"partition,omitempty"`
	// Heal ends every partition.
	Heal bool `yaml:"heal,omitempty" json:"heal,omitempty"`
	// Crash stops nodes, losing what their fsync mode allows; Restart
	// brings them back with what survived.
	Crash   NodeSet `yaml:"crash,omitempty" json:"crash,omitempty"`
	Restart NodeSet `yaml:"restart,omitempty" json:"restart,omitempty"`
	// Join adds this many new, empty nodes, linked to random live ones.
	Join int `yaml:"join,omitempty" json:"join,omitempty"`
	// Leave removes nodes for good.
	Leave NodeSet `yaml:"leave,omitempty" json:"leave,omitempty"`
	// Skew sets nodes' clock offset and drift from this moment on.
	Skew *Skew `yaml:"skew,omitempty" json:"skew,omitempty"`
}

// Write is a batch of random client writes.
type Write struct {
	Nodes NodeSet `yaml:"nodes,omitempty" json:"nodes,omitempty"` // default: all
	Count int     `yaml:"count" json:"count"`
	// Keys is the key space written to, key:00000000 up; default the
	// scenario's preloaded key count, or 1000.
	Keys    int     `yaml:"keys,omitempty" json:"keys,omitempty"`
	Deletes float64 `yaml:"deletes,omitempty" json:"deletes,omitempty"` // fraction that are DELs
	// Expires is the fraction of the other writes (SETs) made with a time
	// to live of TTL (default 5 s), as SET key value PX ttl.
	Expires float64  `yaml:"expires,omitempty" json:"expires,omitempty"`
	TTL     Duration `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	Over    Duration `yaml:"over,omitempty" json:"over,omitempty"`
}

// defaultTTL is a Write's TTL when none is given.
const defaultTTL = 5 * time.Second

// TypedWrite is a batch of random client commands on typed keys, at random
// nodes of Nodes, spread evenly at random over [At, At+Over]: HSET, HDEL
// and HINCRBY on hash:0000 up, SADD and SREM on set:0000 up, INCRBY on
// counter:0000 up, ZADD, ZINCRBY and ZREM on zset:0000 up, LPUSH, RPUSH,
// LPOP, RPOP, LINSERT and LSET on list:0000 up, and a share of SETs and
// DELs of any of them.
type TypedWrite struct {
	Nodes NodeSet `yaml:"nodes,omitempty" json:"nodes,omitempty"` // default: all
	Count int     `yaml:"count" json:"count"`
	// Keys is the number of keys of each type; default 4.
	Keys int `yaml:"keys,omitempty" json:"keys,omitempty"`
	// Elements is the number of field or member names used per key;
	// default 4.
	Elements int `yaml:"elements,omitempty" json:"elements,omitempty"`
	// Overwrites is the fraction of commands that are a SET (a third) or
	// a DEL (the rest) of a typed key.
	Overwrites float64  `yaml:"overwrites,omitempty" json:"overwrites,omitempty"`
	Over       Duration `yaml:"over,omitempty" json:"over,omitempty"`
	// Floats makes half the counter and field increments INCRBYFLOAT and
	// HINCRBYFLOAT (of integers, so that every sum is exact).
	Floats bool `yaml:"floats,omitempty" json:"floats,omitempty"`
}

// Command is one client command (HSET, HDEL, HINCRBY, SADD, SREM, INCR,
// INCRBY, DECR, DECRBY, SET or DEL, with Redis's arguments) at Node.
type Command struct {
	Node int      `yaml:"node" json:"node"`
	Args []string `yaml:"args,flow" json:"args"`
}

// Set is SET Key Value at Node, with a time to live if TTL is set (SET key
// value PX ttl).
type Set struct {
	Node  int      `yaml:"node" json:"node"`
	Key   string   `yaml:"key" json:"key"`
	Value string   `yaml:"value" json:"value"`
	TTL   Duration `yaml:"ttl,omitempty" json:"ttl,omitempty"`
}

// Del is DEL Key at Node.
type Del struct {
	Node int    `yaml:"node" json:"node"`
	Key  string `yaml:"key" json:"key"`
}

// Skew sets a clock's offset from true time and its drift.
type Skew struct {
	Nodes    NodeSet  `yaml:"nodes" json:"nodes"`
	Offset   Duration `yaml:"offset" json:"offset"`
	DriftPPM float64  `yaml:"drift_ppm,omitempty" json:"drift_ppm,omitempty"`
}

// Duration is a time.Duration written as "1m30s" (or a number of seconds).
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration", n.Line)
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.Abs(f) > maxAt.Seconds() {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

// NodeSet names nodes: "all", an index "7", an inclusive range "0-49",
// a share of the starting nodes "0%-50%" (from ⌊0·n⌋ to ⌊0.5·n⌋, exclusive),
// or several of these separated by commas.
type NodeSet string

type span struct{ lo, hi int } // [lo, hi)

// resolve turns the set into index ranges for a mesh that started with n
// nodes and has total nodes now.
func (s NodeSet) resolve(n, total int) ([]span, error) {
	str := strings.TrimSpace(string(s))
	if str == "" || str == "all" {
		return []span{{0, total}}, nil
	}
	var out []span
	for _, part := range strings.Split(str, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		if strings.HasSuffix(lo, "%") {
			if !isRange || !strings.HasSuffix(hi, "%") {
				return nil, fmt.Errorf("node set %q: a share is written 0%%-50%%", part)
			}
			a, err1 := strconv.ParseFloat(strings.TrimSuffix(lo, "%"), 64)
			b, err2 := strconv.ParseFloat(strings.TrimSuffix(hi, "%"), 64)
			if err1 != nil || err2 != nil || !(a >= 0 && a <= b && b <= 100) {
				return nil, fmt.Errorf("node set %q: bad share", part)
			}
			out = append(out, span{int(a / 100 * float64(n)), int(b / 100 * float64(n))})
			continue
		}
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("node set %q: bad index", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("node set %q: bad range", part)
			}
		}
		if b >= total {
			return nil, fmt.Errorf("node set %q: node %d does not exist (%d nodes)", part, b, total)
		}
		out = append(out, span{a, b + 1})
	}
	return out, nil
}

func spansLen(sp []span) int {
	n := 0
	for _, s := range sp {
		n += s.hi - s.lo
	}
	return n
}

func spansAt(sp []span, k int) int {
	for _, s := range sp {
		if k < s.hi-s.lo {
			return s.lo + k
		}
		k -= s.hi - s.lo
	}
	panic("sim: index outside node set")
}

// Limits on a scenario read from outside.
const (
	MaxScenarioBytes = 4 << 20
	maxEvents        = 100_000
	maxWrites        = 10_000_000
	maxAt            = 365 * 24 * time.Hour
	maxJoin          = 1 << 16
	maxNodes         = 1 << 20
)

// ParseScenario reads a scenario in YAML or JSON (JSON is YAML). Unknown
// fields are errors. It checks every limit and never panics, whatever the
// bytes.
func ParseScenario(data []byte) (sc *Scenario, err error) {
	if len(data) > MaxScenarioBytes {
		return nil, fmt.Errorf("sim: scenario of %d bytes (max %d)", len(data), MaxScenarioBytes)
	}
	defer func() {
		// The YAML decoder is not ours; bytes from outside must not crash.
		if r := recover(); r != nil {
			sc, err = nil, fmt.Errorf("sim: scenario: malformed input (%v)", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("sim: scenario: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks a scenario's limits and actions; node sets are checked
// against the node count when the run starts.
func (s *Scenario) Validate() error {
	if s.Nodes < 0 || s.Nodes > maxNodes || s.Keys < 0 || s.Keys > 1<<26 {
		return errors.New("sim: scenario: nodes or keys out of range")
	}
	switch s.Fsync {
	case "", FsyncAlways, FsyncEverysec, FsyncNo:
	default:
		return fmt.Errorf("sim: scenario: fsync %q", s.Fsync)
	}
	if s.ForgetAfter < 0 || time.Duration(s.ForgetAfter) > maxAt {
		return errors.New("sim: scenario: forget_after out of range")
	}
	if s.Loss != nil && !(*s.Loss >= 0 && *s.Loss <= 0.5) {
		return errors.New("sim: scenario: loss out of [0, 0.5]")
	}
	if len(s.Events) > maxEvents {
		return fmt.Errorf("sim: scenario: %d events (max %d)", len(s.Events), maxEvents)
	}
	writes := 0
	for i, e := range s.Events {
		bad := func(why string) error {
			return fmt.Errorf("sim: scenario: event %d (at %v): %s", i, time.Duration(e.At), why)
		}
		if e.At < 0 || time.Duration(e.At) > maxAt {
			return bad("time out of range")
		}
		n := 0
		if e.Write != nil {
			n++
			w := e.Write
			if w.Count < 0 || w.Keys < 0 || w.Keys > 1<<26 || !(w.Deletes >= 0 && w.Deletes <= 1) || w.Over < 0 || time.Duration(w.Over) > maxAt ||
				!(w.Expires >= 0 && w.Expires <= 1) || w.TTL < 0 || time.Duration(w.TTL) > maxAt {
				return bad("write out of range")
			}
			if writes += w.Count; writes > maxWrites {
				return bad("too many writes")
			}
		}
		if e.Set != nil {
			n++
			if e.Set.Node < 0 || len(e.Set.Key) == 0 || len(e.Set.Key) > 64000 || len(e.Set.Value) > 1<<20 ||
				e.Set.TTL < 0 || time.Duration(e.Set.TTL) > maxAt {
				return bad("bad set")
			}
		}
		if e.Del != nil {
			n++
			if e.Del.Node < 0 || len(e.Del.Key) == 0 || len(e.Del.Key) > 64000 {
				return bad("bad del")
			}
		}
		if e.Typed != nil {
			n++
			w := e.Typed
			if w.Count < 0 || w.Keys < 0 || w.Keys > 1<<20 || w.Elements < 0 || w.Elements > 1<<16 ||
				!(w.Overwrites >= 0 && w.Overwrites <= 1) || w.Over < 0 || time.Duration(w.Over) > maxAt {
				return bad("typed write out of range")
			}
			if writes += w.Count; writes > maxWrites {
				return bad("too many writes")
			}
		}
		if e.Command != nil {
			n++
			if e.Command.Node < 0 {
				return bad("bad command node")
			}
			if err := checkCommand(e.Command.Args); err != nil {
				return bad(err.Error())
			}
		}
		if e.Partition != nil {
			n++
		}
		if e.Heal {
			n++
		}
		if e.Crash != "" {
			n++
		}
		if e.Restart != "" {
			n++
		}
		if e.Join != 0 {
			n++
			if e.Join < 0 || e.Join > maxJoin {
				return bad("join out of range")
			}
		}
		if e.Leave != "" {
			n++
		}
		if e.Skew != nil {
			n++
			if time.Duration(e.Skew.Offset).Abs() > 30*24*time.Hour || math.IsNaN(e.Skew.DriftPPM) || math.Abs(e.Skew.DriftPPM) > 1e5 {
				return bad("skew out of range")
			}
		}
		if n != 1 {
			return bad(fmt.Sprintf("want exactly one action, have %d", n))
		}
	}
	return nil
}

// end is the time of the last event (writes included).
func (s *Scenario) end() time.Duration {
	var end time.Duration
	for _, e := range s.Events {
		t := time.Duration(e.At)
		if e.Write != nil {
			t += time.Duration(e.Write.Over)
		}
		if e.Typed != nil {
			t += time.Duration(e.Typed.Over)
		}
		end = max(end, t)
	}
	return end
}

// Names lists the built-in scenarios.
func Names() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin returns the named built-in scenario scaled to cfg (after
// defaults: Nodes, Keys, LogRetain).
func Builtin(name string, cfg Config) (*Scenario, error) {
	b, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("sim: no scenario %q (have %s)", name, strings.Join(Names(), ", "))
	}
	cfg = cfg.withDefaults()
	if cfg.Keys == 0 {
		cfg.Keys = 1000
	}
	s := b.make(cfg)
	s.Name, s.Description, s.Nodes, s.Keys = name, b.desc, cfg.Nodes, cfg.Keys
	return s, s.Validate()
}

type builtin struct {
	desc string
	make func(cfg Config) *Scenario
}

func sec(s float64) Duration { return Duration(s * float64(time.Second)) }

func idx(i int) NodeSet { return NodeSet(strconv.Itoa(i)) }

func idxRange(lo, hi int) NodeSet { // inclusive
	if lo == hi {
		return idx(lo)
	}
	return NodeSet(fmt.Sprintf("%d-%d", lo, hi))
}

var builtins = map[string]builtin{
	"partition-heal": {
		desc: "the mesh splits in two halves for 30 s while clients write on both sides (10% DELs, a tenth of the SETs expiring after 5 s, some keys on both), then heals",
		make: func(c Config) *Scenario {
			w := max(10, c.Keys/10)
			return &Scenario{Events: []Event{
				{At: sec(1), Partition: []NodeSet{"0%-50%", "50%-100%"}},
				{At: sec(5), Write: &Write{Count: w, Deletes: 0.1, Expires: 0.1, Over: sec(20)}},
				{At: sec(30), Heal: true},
			}}
		},
	},
	"offline-rejoin": {
		desc: "two sites go offline; one returns after 20 s and catches up from its peers' logs, the other after 15 min, by then past every log's retention, and repairs by Merkle (5% DELs, a tenth of the SETs expiring after 5 s)",
		make: func(c Config) *Scenario {
			n := c.Nodes
			if n < 3 {
				n = 3
			}
			far, near := n-1, n-2
			rest := idxRange(0, n-3)
			long := max(c.LogRetain+c.LogRetain/2, c.Keys/5)
			return &Scenario{Nodes: n, Events: []Event{
				{At: sec(1), Partition: []NodeSet{idx(near), idx(far)}},
				{At: sec(2), Write: &Write{Nodes: rest, Count: max(20, c.Keys/50), Deletes: 0.05, Expires: 0.1, Over: sec(15)}},
				{At: sec(2), Write: &Write{Nodes: idx(near), Count: 20, Over: sec(15)}},
				{At: sec(20), Partition: []NodeSet{idx(far)}},
				{At: sec(30), Write: &Write{Nodes: idxRange(0, near), Count: long, Deletes: 0.05, Expires: 0.1, Over: sec(840)}},
				{At: sec(30), Write: &Write{Nodes: idx(far), Count: 100, Deletes: 0.05, Expires: 0.1, Over: sec(840)}},
				{At: sec(900), Heal: true},
			}}
		},
	},
	"churn": {
		desc: "while clients write (10% DELs, a tenth of the SETs expiring after 5 s), nodes crash and restart, leave for good and new empty ones join",
		make: func(c Config) *Scenario {
			j := max(1, c.Nodes/20)
			return &Scenario{Events: []Event{
				{At: sec(1), Write: &Write{Count: max(20, c.Keys/10), Deletes: 0.1, Expires: 0.1, Over: sec(60)}},
				// A burst at the nodes about to crash: under a lazy fsync
				// some of it is not yet synced when they go down.
				{At: sec(9.5), Write: &Write{Nodes: "10%-15%", Count: max(10, c.Nodes/2), Deletes: 0.1, Expires: 0.1, Over: sec(0.5)}},
				{At: sec(10), Crash: "10%-15%"},
				{At: sec(15), Leave: "0%-5%"},
				{At: sec(20), Restart: "10%-15%"},
				{At: sec(25), Join: j},
				{At: sec(35), Crash: "20%-25%"},
				{At: sec(40), Leave: "30%-33%"},
				{At: sec(45), Join: j},
				{At: sec(50), Restart: "20%-25%"},
			}}
		},
	},
	"forget-rejoin": {
		desc: "one site is cut off and writes alone, then goes down; the others delete and expire keys, forget it after --forget-after (20 s) and collect; it comes back after 90 s: what it held from before the stable time of its return is set aside, its later writes merge",
		make: func(c Config) *Scenario {
			n := max(c.Nodes, 3)
			away := idx(n - 1)
			rest := idxRange(0, n-2)
			return &Scenario{Nodes: n, Fsync: FsyncAlways, ForgetAfter: sec(20), Events: []Event{
				{At: sec(1), Partition: []NodeSet{away}},
				{At: sec(2), Write: &Write{Nodes: away, Count: max(10, c.Keys/20), Deletes: 0.2, Over: sec(8)}},
				{At: sec(2), Write: &Write{Nodes: rest, Count: max(40, c.Keys/2), Deletes: 0.3, Expires: 0.2, Over: sec(60)}},
				{At: sec(12), Crash: away},
				{At: sec(13), Heal: true},
				{At: sec(90), Restart: away},
				{At: sec(95), Write: &Write{Count: max(20, c.Keys/10), Deletes: 0.1, Expires: 0.1, Over: sec(10)}},
			}}
		},
	},
	"typed": {
		desc: "clients edit hashes, sets, sorted sets, lists and counters at every node (HSET, HDEL, HINCRBY, SADD, SREM, ZADD, ZINCRBY, ZREM, LPUSH, RPUSH, LPOP, RPOP, LINSERT, LSET, INCRBY, and SETs and DELs of them) while the mesh splits in two, a fifth of the nodes crash just after a burst of writes and restart, one node is cut off alone, and clocks are skewed by seconds; fsync always unless the run says otherwise",
		make: func(c Config) *Scenario {
			n := max(c.Nodes, 3)
			crash := idxRange(0, max(0, n/5-1))
			return &Scenario{Nodes: n, Fsync: FsyncAlways, Events: []Event{
				{At: 0, Skew: &Skew{Nodes: crash, Offset: sec(2), DriftPPM: 200}},
				{At: 0, Skew: &Skew{Nodes: idx(n - 1), Offset: sec(-1.5), DriftPPM: -300}},
				{At: sec(1), Typed: &TypedWrite{Count: max(150, 10*n), Overwrites: 0.05, Over: sec(30)}},
				{At: sec(5), Partition: []NodeSet{"0%-50%", "50%-100%"}},
				{At: sec(12), Heal: true},
				{At: sec(14.5), Typed: &TypedWrite{Nodes: crash, Count: 10, Over: sec(0.4)}},
				{At: sec(15), Crash: crash},
				{At: sec(20), Restart: crash},
				{At: sec(22), Partition: []NodeSet{idx(n - 1)}},
				{At: sec(28), Heal: true},
			}}
		},
	},
	"skew": {
		desc: "clocks are off by seconds and drift, one by 90 s (past the 60 s limit), while clients write to a small, contended key space",
		make: func(c Config) *Scenario {
			ks := max(10, c.Keys/20)
			return &Scenario{Events: []Event{
				{At: 0, Skew: &Skew{Nodes: "0%-10%", Offset: sec(2), DriftPPM: 200}},
				{At: 0, Skew: &Skew{Nodes: "10%-20%", Offset: sec(-3), DriftPPM: -300}},
				{At: 0, Skew: &Skew{Nodes: "20%-30%", Offset: Duration(250 * time.Millisecond), DriftPPM: 50}},
				{At: 0, Skew: &Skew{Nodes: idx(c.Nodes - 1), Offset: sec(90)}},
				{At: sec(1), Write: &Write{Count: max(20, c.Keys/5), Keys: ks, Deletes: 0.1, Over: sec(30)}},
				{At: sec(10), Set: &Set{Node: 0, Key: "contended", Value: "from-fast-clock"}},
				{At: sec(10), Set: &Set{Node: c.Nodes - 1, Key: "contended", Value: "from-90s-ahead"}},
				{At: sec(10), Set: &Set{Node: c.Nodes / 2, Key: "contended", Value: "from-true-clock"}},
			}}
		},
	},
}
