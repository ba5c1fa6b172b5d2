// Package longdouble is Redis's INCRBYFLOAT arithmetic: C's long double on
// x86-64, an 80-bit float with a 64-bit mantissa, emulated with math/big at
// 64 bits of precision, parsed as Redis's string2ld and printed as its
// ld2string ("%.17Lf" with the trailing zeros removed). So 0.1 + 0.2 is
// "0.3", as in Redis, not 0.30000000000000004.
package longdouble

import (
	"math/big"
	"strings"
)

const (
	// Prec is a long double's mantissa, in bits.
	Prec = 64
	// MaxExp and MinExp bound a long double's exponent as math/big's
	// MantExp reports it (mantissa in [0.5, 1)); below MinExp, beyond the
	// smallest subnormal, a value is 0.
	MaxExp = 16384
	MinExp = -16444
	// MaxLen is the longest string Redis parses as a long double.
	MaxLen = 5 * 1024
)

// New is a long double zero: a big.Float at Prec bits, rounding to nearest
// even, as the FPU does.
func New() *big.Float { return new(big.Float).SetPrec(Prec).SetMode(big.ToNearestEven) }

// Parse is Redis's string2ld: strtold's syntax (decimal or hexadecimal, "inf"
// and "infinity"), no leading space, nothing after the number, no NaN, and
// no overflow or underflow to zero.
func Parse(b []byte) (*big.Float, bool) {
	if len(b) == 0 || len(b) >= MaxLen {
		return nil, false
	}
	if f, ok := parseShort(b); ok {
		return f, true
	}
	s := string(b)
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 {
		return nil, false
	}
	neg := s[0] == '-'
	switch strings.ToLower(body) {
	case "inf", "infinity":
		return new(big.Float).SetInf(neg), true
	}
	hex := len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')
	digits, expChar, base := body, byte('e'), 10
	if hex {
		digits, expChar, base = body[2:], 'p', 0
	}
	if !Syntax(digits, hex, expChar) {
		return nil, false
	}
	f, _, err := New().Parse(s, base)
	if err != nil {
		return nil, false
	}
	if Overflows(f) || f.Sign() != 0 && f.MantExp(nil) < MinExp {
		return nil, false // strtold: ERANGE, to infinity or zero
	}
	return f, true
}

// parseShort is Parse for the common case, a plain decimal of at most 19
// digits (a sign, at most one '.'): its digits as an integer, exact in 64
// bits, divided by a power of ten, exact too, which rounds once, as strtold
// does, and costs a fraction of math/big's general parser.
func parseShort(b []byte) (*big.Float, bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		i, neg = 1, b[0] == '-'
	}
	var m uint64
	digits, frac := 0, -1
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case '0' <= c && c <= '9':
			if digits == 19 {
				return nil, false
			}
			m = m*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return nil, false
		}
	}
	if digits == 0 {
		return nil, false
	}
	f := New().SetUint64(m)
	if frac > 0 {
		p := uint64(1)
		for range frac {
			p *= 10
		}
		f.Quo(f, New().SetUint64(p))
	}
	if neg {
		f.Neg(f)
	}
	return f, true
}

// Overflows reports whether finite f is beyond a long double's range (or f
// is infinite).
func Overflows(f *big.Float) bool {
	return f.IsInf() || f.Sign() != 0 && f.MantExp(nil) > MaxExp
}

// Syntax is strtod's syntax after the sign and a hexadecimal "0x" (hex):
// a mantissa with at most one '.' and at least one digit,
// then optionally expChar, a sign and decimal digits.
func Syntax(s string, hex bool, expChar byte) bool {
	isDigit := func(ch byte) bool {
		if hex {
			return ('0' <= ch && ch <= '9') || ('a' <= ch|0x20 && ch|0x20 <= 'f')
		}
		return '0' <= ch && ch <= '9'
	}
	i, nd, dot := 0, 0, false
	for ; i < len(s); i++ {
		switch {
		case isDigit(s[i]):
			nd++
		case s[i] == '.' && !dot:
			dot = true
		default:
			goto exponent
		}
	}
exponent:
	if nd == 0 {
		return false
	}
	if i == len(s) {
		return true
	}
	if s[i]|0x20 != expChar {
		return false
	}
	i++
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Format is Redis's ld2string in its human mode; infinities print as C's
// printf prints them.
func Format(f *big.Float) string {
	if f.IsInf() {
		if f.Sign() < 0 {
			return "-inf"
		}
		return "inf"
	}
	return Human(f.Text('f', 17))
}

// Human is a number printed with a fixed count of decimals as Redis's
// human mode shows it: trailing zeros dropped, and the point with them,
// "-0" as "0".
func Human(s string) string {
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
