package record

import (
	"encoding/binary"
	"math"
	"math/big"
	"strconv"
)

// Integer counters (INCR, INCRBY, HINCRBY): what their counts add, exactly,
// and what they hold in memory.

// intCountsSum is what integer counts add, and whether that fits an int64.
func intCountsSum(counts []Count) (sum int64, fits bool) {
	for _, c := range counts {
		var ok1, ok2 bool
		sum, ok1 = addInt64(sum, c.Total)
		sum, ok2 = addInt64(sum, -c.ResetTotal)
		if !ok1 || !ok2 || c.ResetTotal == math.MinInt64 {
			return 0, false
		}
	}
	return sum, true
}

// addInt64 is a + b, and whether it did not overflow.
func addInt64(a, b int64) (int64, bool) {
	s := a + b
	return s, (a >= 0) != (b >= 0) || (s >= 0) == (a >= 0)
}

// intCounterValue is an integer base plus integer counts (add, when fits;
// else counts summed anew), printed: ok is false if the base is not an
// integer. Counts merged from several nodes may take a counter beyond an
// int64 (each node keeps its own increments within one, and refuses one
// that would take the value it shows beyond); the value is then the exact
// sum, as a longer decimal, which an INCR refuses as Redis refuses such a
// string ("value is not an integer or out of range"), rather than a sum
// wrapped around.
func intCounterValue(base []byte, add int64, fits bool, counts []Count) ([]byte, bool) {
	b, ok := ParseInt(base)
	if !ok {
		return nil, false
	}
	if fits {
		if v, ok := addInt64(b, add); ok {
			return strconv.AppendInt(nil, v, 10), true
		}
	}
	sum := new(big.Int).SetInt64(b)
	addIntCounts(sum, counts)
	return sum.Append(nil, 10), true
}

// ParseInt reads b as Redis's string2ll does, the one integer syntax its
// INCR family accepts: an optional '-', then digits without a leading zero
// (0 alone), nothing else ("+5", "007", "-0", " 5" are not integers), within
// an int64.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' || v > math.MaxUint64/10 {
			return 0, false
		}
		d := uint64(c - '0')
		if v*10 > math.MaxUint64-d {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return int64(-v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// addIntCounts adds to sum what integer counts add, exactly.
func addIntCounts(sum *big.Int, counts []Count) {
	var x big.Int
	for _, c := range counts {
		sum.Add(sum, x.SetInt64(c.Total))
		sum.Sub(sum, x.SetInt64(c.ResetTotal))
	}
}

// RunningTotal is what node's next increment of counter name (nil: the
// string's) adds to: its count's total, or 0 where a reset observed all of
// it, as the increment then starts a new run (TypedOp.IncrCounter).
func (t *Typed) RunningTotal(name []byte, node NodeID) int64 {
	c := t.Count(name, node)
	if c.spent() {
		return 0
	}
	return c.Total
}

// CounterState is the typed state INCR leaves on a string key that one
// identity increments: the type register and that identity's count, and
// nothing else. A write path reads it from the in-memory form with
// PeekCounter, without decoding a Typed, and an increment by the same
// identity replaces it whole (see Supersedes).
type CounterState struct {
	KindVersion Version
	Count       Count
}

// PeekCounter reads state, an encoding AppendTyped wrote, as a CounterState:
// ok is false unless it is one (a string's state of one integer count, of
// the string's own counter, and nothing else). It allocates nothing.
func PeekCounter(state []byte) (s CounterState, ok bool) {
	if len(state) < 3 || state[0] != byte(KindString)|kindTimes {
		return CounterState{}, false
	}
	r := typedReader{b: state[1:]}
	r.startDots()
	s.KindVersion = r.dot("kind version")
	if r.count("counts", minShortCountLen) != 1 || r.err != nil {
		return CounterState{}, false
	}
	if s.Count = r.countShort(s.KindVersion); len(s.Count.Name) != 0 {
		return CounterState{}, false
	}
	for range 3 { // fields, members, traces
		if r.uvarint("list") != 0 {
			return CounterState{}, false
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return CounterState{}, false
	}
	return s, true
}

// AppendCounter appends s's in-memory form, what AppendTyped writes of
// s.Typed(), without building the state: the table stores an INCR's
// counter at every write.
func AppendCounter(dst []byte, s CounterState) []byte {
	dst = append(dst, byte(KindString)|kindTimes, 1) // a node table of one node
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.KindVersion.Node))
	dst = binary.AppendVarint(dst, int64(s.KindVersion.TS))
	dst = append(dst, 1) // one count
	dst = appendCountShort(dst, s.Count, s.KindVersion)
	return append(dst, 0, 0, 0) // no fields, members, traces
}

// AppendBinaryCounter appends r's encoding (AppendBinary) with s as its
// typed state, whatever r.Typed holds, without building the state.
func AppendBinaryCounter(dst []byte, r Record, s CounterState) []byte {
	dst = appendRegisters(dst, r, true, Encoding2)
	dst = append(dst, byte(KindString)|kindTimes)
	dst = appendVersion(dst, s.KindVersion)
	dst = append(dst, 1) // one count
	dst = appendCountShort(dst, s.Count, s.KindVersion)
	return append(dst, 0, 0, 0) // no fields, members, traces
}

// Typed is s as a state: one allocation.
func (s CounterState) Typed() *Typed {
	x := new(typedCount)
	x.t.KindVersion = s.KindVersion
	x.c[0] = s.Count
	x.t.Counts = x.c[:]
	return &x.t
}

// CounterStates hands out the states CounterState.Typed builds from blocks
// of them, one allocation a block rather than one a state, for a writer
// that builds one at every INCR. No state is handed out twice; a block is
// garbage once none of its states is referenced. The zero value is ready.
type CounterStates struct {
	block []typedCount
}

// counterBlock is how many states a block holds: about 11 KiB.
const counterBlock = 32

// Typed is s.Typed(), from the current block.
func (a *CounterStates) Typed(s CounterState) *Typed {
	if len(a.block) == 0 {
		a.block = make([]typedCount, counterBlock)
	}
	x := &a.block[0]
	a.block = a.block[1:]
	x.t.KindVersion = s.KindVersion
	x.c[0] = s.Count
	x.t.Counts = x.c[:]
	return &x.t
}

// CounterOf is the CounterState whose Typed t is (t must be one).
func CounterOf(t *Typed) CounterState {
	return CounterState{KindVersion: t.KindVersion, Count: t.Counts[0]}
}

// Digest is the digest of s as a state (Record.Versions' third), without
// building one.
func (s CounterState) Digest() uint64 {
	counts := [1]Count{s.Count}
	t := Typed{KindVersion: s.KindVersion, Counts: counts[:]}
	return t.digest()
}

// Value is what the counter shows over base, the value register's data:
// ok is false unless base is an integer and the sum fits an int64.
func (s CounterState) Value(base []byte) (int64, bool) {
	b, ok := ParseInt(base)
	if !ok {
		return 0, false
	}
	add, fits := intCountsSum([]Count{s.Count})
	if !fits {
		return 0, false
	}
	return addInt64(b, add)
}

// Spent reports whether a reset observed all of the count: an increment
// then starts a new run of counts (TypedOp.IncrCounter), which the
// caller leaves to the general path.
func (s CounterState) Spent() bool { return s.Count.spent() }

// Supersedes reports whether s, merged into was, replaces it whole: the
// same identity's count in the same run, at a newer version, with the
// same reset, under a newer type register. A delta of s then merges into
// was as s (mergeTyped), so a writer may store s without the merge.
func (s CounterState) Supersedes(was CounterState) bool {
	c, w := s.Count, was.Count
	return len(c.Name) == 0 && c.Node == w.Node && c.Start == w.Start && c.Ver.Compare(w.Ver) > 0 &&
		c.ResetVer == w.ResetVer && c.ResetTotal == w.ResetTotal && c.FTotal == "" && c.FReset == "" &&
		s.KindVersion.Compare(was.KindVersion) > 0
}
