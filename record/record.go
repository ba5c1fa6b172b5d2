// Package record is redmesh's data model and its one merge rule.
//
// A record is what a node holds for one key: two registers, each with its
// own version, and, for keys that are not plain strings, a typed state
// (Typed). The value register holds a string or a tombstone; the expiry
// register an absolute deadline or none, so that EXPIRE on one node never
// undoes a concurrent SET on another. A version is an HLC timestamp with the
// writing node's ID as tie-break; per register the higher version wins, and
// typed states merge element by element (see Typed). Merge is therefore
// commutative, associative and idempotent, and every node reaches the same
// record whatever the order in which writes arrive.
//
// The package is pure: no IO, no clocks. Callers pass "now" where expiry
// matters.
package record

import (
	"bytes"
	"cmp"
	"fmt"

	"github.com/redmesh/redmesh/hlc"
)

// NodeID identifies the node that wrote a version. It is derived from the
// node's libp2p peer ID, so it is stable and, in practice, unique.
type NodeID uint64

func (n NodeID) String() string { return fmt.Sprintf("%016x", uint64(n)) }

// Version orders writes: timestamp first, node ID as tie-break.
type Version struct {
	TS   hlc.Timestamp
	Node NodeID
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than o.
func (v Version) Compare(o Version) int {
	if c := cmp.Compare(v.TS, o.TS); c != 0 {
		return c
	}
	return cmp.Compare(v.Node, o.Node)
}

// IsZero reports whether v is the version of a register never written.
func (v Version) IsZero() bool { return v == Version{} }

func (v Version) String() string { return fmt.Sprintf("%v@%v", v.TS, v.Node) }

// Kind is the Redis type of a key.
type Kind uint8

// KindString is a string (a counter included): what the value register holds.
const KindString Kind = 0

// Kind names the type as Redis's TYPE does.
func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindHash:
		return "hash"
	case KindSet:
		return "set"
	case KindZSet:
		return "zset"
	case KindList:
		return "list"
	}
	return fmt.Sprintf("kind%d", uint8(k))
}

// Value is the value register: a string, or a tombstone.
type Value struct {
	Version   Version
	Tombstone bool
	Data      []byte
}

// Expiry is the expiry register: an absolute deadline, so every node expires
// the key at the same moment whenever the write reached it.
type Expiry struct {
	Version Version
	// At is the deadline in Unix milliseconds; 0 means no expiry.
	At int64
}

// Record is everything a node holds for one key.
type Record struct {
	Value  Value
	Expiry Expiry
	// Typed is nil for a plain string (or its tombstone): most keys.
	Typed *Typed
}

// Kind is the key's type as clients see it: the type of its latest write
// other than a delete. A string written after the type register (by a node
// that held no typed state for the key: it never saw one, or collected it)
// is that write.
func (r Record) Kind() Kind {
	if r.Typed == nil || r.Typed.KindVersion.IsZero() ||
		!r.Value.Tombstone && r.Value.Version.Compare(r.Typed.KindVersion) > 0 {
		return KindString
	}
	return r.Typed.Kind
}

// Exists reports whether the key has a value at all (expired or not). The
// zero Record, a key never written, does not. A typed key exists while its
// type holds something: a hash a field, a set a member, a counter a value
// or increments a delete did not observe.
func (r Record) Exists() bool {
	strLive := !r.Value.Version.IsZero() && !r.Value.Tombstone
	if r.Typed == nil {
		return strLive
	}
	switch r.Kind() {
	case KindString:
		return strLive || countsAdd(r.Typed.countsOf(nil))
	default:
		return r.Typed.shows() // Len() > 0, without counting a large hash
	}
}

// Written reports whether anything was ever written to the key: a
// register, or a typed state (a tombstone counts).
func (r Record) Written() bool {
	return !r.Value.Version.IsZero() || !r.Expiry.Version.IsZero() || !r.Typed.empty()
}

// StringData is a string key's value as a client reads it: the value
// register, plus what a counter's increments add.
func (r Record) StringData() []byte {
	base := r.Value.Data
	if r.Typed == nil {
		return base
	}
	if s, ok := r.Typed.hllString(r.Value.Version); ok { // HyperLogLog hook (record/hll.go)
		return s
	}
	counts := r.Typed.countsOf(nil)
	if len(counts) == 0 {
		return base
	}
	if r.Value.Tombstone || r.Value.Version.IsZero() {
		if !countsAdd(counts) {
			return base
		}
	}
	return counterValue(r.CounterBase(), counts)
}

// CounterBase is the base a string counter's increments add to: the value
// register, or 0 where a delete left only increments it did not observe.
func (r Record) CounterBase() []byte {
	if r.Value.Tombstone || r.Value.Version.IsZero() {
		return []byte("0")
	}
	return r.Value.Data
}

// Expired reports whether the record's deadline has passed at nowMillis. As in
// Redis, a key is still there during the millisecond of its deadline.
func (r Record) Expired(nowMillis int64) bool {
	return r.Expiry.At != 0 && nowMillis > r.Expiry.At
}

// Live reports whether a client reading at nowMillis sees the key.
func (r Record) Live(nowMillis int64) bool {
	return r.Exists() && !r.Expired(nowMillis)
}

// DigestTS marks a version that is a digest of a typed state rather than a
// write's version: no HLC reaches it.
const DigestTS = hlc.Timestamp(1<<64 - 1)

// Versions lists the register versions in a fixed order (value, expiry, typed
// state): the summary that the Merkle index and reconciliation compare. The
// typed state, merged as a whole, is summed up by its digest, a version
// whose timestamp is DigestTS; a plain string has none.
func (r Record) Versions() [3]Version {
	vs := [3]Version{r.Value.Version, r.Expiry.Version}
	if !r.Typed.empty() {
		vs[2] = Version{TS: DigestTS, Node: NodeID(r.Typed.digest())}
	}
	return vs
}

// Newest is the highest version of any write the record holds: registers,
// elements, counts and traces. A peer's record is judged by it (clock skew).
func (r Record) Newest() Version {
	n := r.Value.Version
	up := func(v Version) {
		if v.Compare(n) > 0 {
			n = v
		}
	}
	up(r.Expiry.Version)
	if t := r.Typed; t != nil {
		up(t.KindVersion)
		for _, counts := range [][]Count{t.countList(), t.ScoreCountList()} {
			for _, c := range counts {
				up(c.Ver)
				up(c.ResetVer)
			}
		}
		for which := range numLists {
			t.each(which, func(run []Elem) bool {
				for _, e := range run {
					up(e.Dot)
				}
				return true
			})
		}
		up(t.HLL.newest()) // HyperLogLog hook (record/hll.go)
	}
	return n
}

// Swept is the record an expiry sweep leaves behind: the value register
// becomes a tombstone at the SAME version. Because Merge prefers a tombstone
// over a value of equal version, sweeping is itself a merge that every node
// reaches independently, with no new version that could beat a concurrent
// write elsewhere.
//
// A typed state is swept the same way: every element it holds is traced as
// removed and every count reset, which every node holding the same state
// does alike.
func (r Record) Swept() Record {
	r.Value = Value{Version: r.Value.Version, Tombstone: true}
	if r.Typed != nil {
		// The traces' time is the deadline: every member holding the state
		// sweeps it once its clock passes the deadline, which stability
		// (Collect) then implies of all of them.
		r.Typed = mergeTyped(r.Typed, r.Typed.Clear(hlc.New(r.Expiry.At, 0)))
	}
	return r
}

// Merge returns the merge of two records: per register, the higher version
// wins. Equal versions come only from copies of the same write (or its sweep),
// so the tie-breaks below never choose between different writes; they exist
// so that merge stays a total function that is commutative even on corrupt
// input.
func Merge(a, b Record) Record {
	m := Record{
		Value:  mergeValue(a.Value, b.Value),
		Expiry: mergeExpiry(a.Expiry, b.Expiry),
		Typed:  mergeTyped(a.Typed, b.Typed),
	}
	if m.Typed.empty() {
		m.Typed = nil
	}
	return m
}

// MergeInto merges incoming into local and reports whether the result differs
// from local, that is, whether anything incoming won. A write that does not
// win must not be logged or forwarded: that is what stops loops.
func MergeInto(local, incoming Record) (Record, bool) {
	m := Merge(local, incoming)
	return m, !Equal(m, local)
}

func mergeValue(a, b Value) Value {
	if compareValue(a, b) >= 0 {
		return a
	}
	return b
}

func compareValue(a, b Value) int {
	if c := a.Version.Compare(b.Version); c != 0 {
		return c
	}
	// A tombstone beats a value of the same version: that is the expiry sweep.
	if a.Tombstone != b.Tombstone {
		if a.Tombstone {
			return 1
		}
		return -1
	}
	return bytes.Compare(a.Data, b.Data)
}

func mergeExpiry(a, b Expiry) Expiry {
	c := a.Version.Compare(b.Version)
	if c == 0 {
		c = cmp.Compare(a.At, b.At)
	}
	if c >= 0 {
		return a
	}
	return b
}

// Equal reports whether two records hold the same registers.
func Equal(a, b Record) bool {
	return a.Expiry == b.Expiry && compareValue(a.Value, b.Value) == 0 && equalTyped(a.Typed, b.Typed)
}
