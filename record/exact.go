package record

import (
	"encoding/binary"
	"errors"
	"math/big"

	"github.com/redmesh/redmesh/longdouble"
)

// Float counters (INCRBYFLOAT, HINCRBYFLOAT). A node's float increments of a
// counter are held in its Count as an exact total (FTotal, and FReset for
// the reset pair), so that the counter's value, base plus every count's
// total minus its reset, is one exact sum that no order of adding changes:
// every node rounds the same number once, to a long double, and prints it
// as Redis does. An increment adds to its node's total exactly what moves
// the counter from the value the node held to the value Redis's arithmetic
// gives (the previous value as printed, plus the increment, in long
// double, printed with 17 decimals): on one node the counter follows
// Redis's chain of results bit for bit, and increments made at once at
// different nodes each add what they moved.

// Exact is a number m·2^e held without rounding (every long double, and any
// sum of them, is one), in a canonical encoding, so that equal totals
// compare, encode and hash alike: "" for zero, else a sign byte (0 or 1),
// e as a zigzag varint and |m| big-endian, odd, with no leading zero byte.
type Exact string

// Bounds of a decoded Exact. The widest sum of long doubles spans about
// 33,000 bits; a count's total adds a bit per doubling of its increments.
const (
	maxExactMant = 8 << 10 // bytes
	maxExactExp  = 1 << 20
)

// ErrFloatRange refuses a float increment whose node's exact total would
// pass maxExactMant.
var ErrFloatRange = errors.New("float counter's exact total out of range")

// dyadic is an Exact being computed: m·2^e. Written here on math/big's Int
// because big.Float rounds every result to a set precision, and no library
// adds floats of any exponents exactly.
type dyadic struct {
	m big.Int
	e int
}

// decode is x as a dyadic; x must be valid (checkExact).
func (x Exact) decode() *dyadic {
	d := new(dyadic)
	if x == "" {
		return d
	}
	e, k := binary.Varint([]byte(x[1:]))
	d.m.SetBytes([]byte(x[1+k:]))
	if x[0] == 1 {
		d.m.Neg(&d.m)
	}
	d.e = int(e)
	return d
}

// encode is d in canonical form.
func (d *dyadic) encode() Exact {
	if d.m.Sign() == 0 {
		return ""
	}
	m := new(big.Int).Abs(&d.m)
	z := m.TrailingZeroBits()
	m.Rsh(m, z)
	sign := byte(0)
	if d.m.Sign() < 0 {
		sign = 1
	}
	b := binary.AppendVarint([]byte{sign}, int64(d.e)+int64(z))
	return Exact(append(b, m.Bytes()...))
}

// add sets d to d + x·sign (sign ±1) exactly.
func (d *dyadic) add(x *dyadic, sign int) {
	if x.m.Sign() == 0 {
		return
	}
	xm := &x.m
	if sign < 0 {
		xm = new(big.Int).Neg(xm)
	}
	switch {
	case d.m.Sign() == 0:
		d.m.Set(xm)
		d.e = x.e
	case x.e >= d.e:
		d.m.Add(&d.m, new(big.Int).Lsh(xm, uint(x.e-d.e)))
	default:
		d.m.Lsh(&d.m, uint(d.e-x.e))
		d.m.Add(&d.m, xm)
		d.e = x.e
	}
}

// addInt sets d to d + n.
func (d *dyadic) addInt(n int64) {
	if n != 0 {
		x := &dyadic{}
		x.m.SetInt64(n)
		d.add(x, 1)
	}
}

// dyadicOf is finite f exactly.
func dyadicOf(f *big.Float) *dyadic {
	d := new(dyadic)
	if f.Sign() == 0 {
		return d
	}
	mant := new(big.Float)
	exp := f.MantExp(mant) // f = mant·2^exp, 0.5 <= |mant| < 1
	prec := int(f.MinPrec())
	mant.SetMantExp(mant, prec) // an integer
	mant.Int(&d.m)
	d.e = exp - prec
	return d
}

// longDouble is d rounded to a long double (infinite past its range).
func (d *dyadic) longDouble() *big.Float {
	f := longdouble.New().SetInt(&d.m)
	f.SetMantExp(f, d.e)
	if longdouble.Overflows(f) {
		return f.SetInf(f.Sign() < 0)
	}
	if f.Sign() != 0 && f.MantExp(nil) < longdouble.MinExp {
		return f.SetInt64(0)
	}
	return f
}

// checkExact reports whether b is an Exact in canonical form within bounds:
// what a decoder lets in.
func checkExact(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if b[0] > 1 {
		return false
	}
	e, k := binary.Varint(b[1:])
	if k <= 0 || e > maxExactExp || e < -maxExactExp {
		return false
	}
	m := b[1+k:]
	return len(m) > 0 && len(m) <= maxExactMant && m[0] != 0 && m[len(m)-1]&1 == 1
}

// floatCounts reports whether any of counts holds float increments a reset
// did not observe.
func floatCounts(counts []Count) bool {
	for _, c := range counts {
		if c.FTotal != c.FReset {
			return true
		}
	}
	return false
}

// exactValue is a counter's value as one exact sum: base (a long double;
// ok is false if it is none) plus what each of counts adds.
func exactValue(base []byte, counts []Count) (d *dyadic, ok bool) {
	f, ok := longdouble.Parse(base)
	if !ok || f.IsInf() {
		return nil, false
	}
	d = dyadicOf(f)
	addCounts(d, counts)
	return d, true
}

// addCounts adds to d what each count adds, integer and float.
func addCounts(d *dyadic, counts []Count) {
	for _, c := range counts {
		d.addInt(c.Total)
		d.addInt(-c.ResetTotal)
		if c.FTotal != c.FReset {
			d.add(c.FTotal.decode(), 1)
			d.add(c.FReset.decode(), -1)
		}
	}
}

// countsAdd reports whether counts add anything to their counter.
func countsAdd(counts []Count) bool {
	if !floatCounts(counts) {
		if sum, fits := intCountsSum(counts); fits {
			return sum != 0
		}
		var sum big.Int
		addIntCounts(&sum, counts)
		return sum.Sign() != 0
	}
	d := new(dyadic)
	addCounts(d, counts)
	return d.m.Sign() != 0
}

// counterValue is a counter's value as a client reads it: base plus what its
// counts add. Integer counts on an integer base add as integers; float
// counts, or counts on a base that is a float, give the exact sum rounded
// to a long double and printed as INCRBYFLOAT prints. A base that is not a
// number shows as it is.
func counterValue(base []byte, counts []Count) []byte {
	if len(counts) == 0 {
		return base
	}
	if !floatCounts(counts) {
		add, fits := intCountsSum(counts)
		if fits && add == 0 {
			return base
		}
		if v, ok := intCounterValue(base, add, fits, counts); ok {
			return v
		}
	}
	d, ok := exactValue(base, counts)
	if !ok {
		return base
	}
	return []byte(longdouble.Format(d.longDouble()))
}

// CountsSum is what the counts of counter name (nil: the string's) add to
// its base, integer and float, exactly: for checkers.
func (t *Typed) CountsSum(name []byte) *big.Float {
	d := new(dyadic)
	addCounts(d, t.countsOf(name))
	f := new(big.Float).SetPrec(uint(max(d.m.BitLen(), 1))).SetInt(&d.m)
	return f.SetMantExp(f, d.e)
}
