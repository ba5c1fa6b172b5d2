package node

import (
	"math"
	"strconv"
	"strings"

	"github.com/redmesh/redmesh/longdouble"
)

// Sorted-set scores as Redis reads and writes them: C's strtod syntax
// (decimal or hexadecimal, "inf" and "infinity"), replies in "%.17g", and
// ZSCAN's values in d2string's form. strconv parses and formats; these add
// strtod's syntax and C's spellings around it.

const (
	errZNotFloat     = "ERR min or max is not a float"
	errZNotLex       = "ERR min or max not valid string range item"
	errZNaN          = "ERR resulting score is not a number (NaN)"
	errWeightNoFloat = "ERR weight value is not a float"
)

func isCSpace(ch byte) bool {
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r'
}

// strtod is C's strtod over all of s: leading white space allowed, nothing
// after the number. It reports the value, whether s is a number, and
// whether the value was out of range (an overflow to infinity, or an
// underflow to zero).
func strtod(s string) (f float64, ok, erange bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	body := s[i:]
	neg := false
	if len(body) > 0 && (body[0] == '+' || body[0] == '-') {
		neg = body[0] == '-'
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "inf", "infinity":
		if neg {
			return math.Inf(-1), true, false
		}
		return math.Inf(1), true, false
	}
	if strings.HasPrefix(strings.ToLower(body), "nan") {
		return math.NaN(), true, false
	}
	hex := len(body) > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')
	text := body
	if hex {
		if !longdouble.Syntax(body[2:], true, 'p') {
			return 0, false, false
		}
		if !strings.ContainsAny(body, "pP") {
			text += "p0"
		}
	} else if !longdouble.Syntax(body, false, 'e') {
		return 0, false, false
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false, false
	}
	erange = math.IsInf(f, 0) || f == 0 && nonzeroMantissa(body, hex)
	if neg {
		f = -f
	}
	return f, true, erange
}

// nonzeroMantissa reports whether a number's digits before its exponent are
// not all zero: a zero result is then an underflow.
func nonzeroMantissa(body string, hex bool) bool {
	if hex {
		body = body[2:]
	}
	for i := 0; i < len(body); i++ {
		ch := body[i]
		if !hex && (ch == 'e' || ch == 'E') || hex && (ch == 'p' || ch == 'P') {
			break
		}
		if ch != '0' && ch != '.' {
			return true
		}
	}
	return false
}

// parseScore is Redis's string2d (ZADD's scores, weights): no leading space,
// no empty string, no NaN, no overflow or underflow.
func parseScore(b []byte) (float64, bool) {
	if len(b) == 0 || isCSpace(b[0]) {
		return 0, false
	}
	f, ok, erange := strtod(string(b))
	if !ok || erange || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// parseRangeScore is a score range's bound as zslParseRange reads it:
// strtod with no check of range, where the empty string is 0.
func parseRangeScore(s string) (float64, bool) {
	if s == "" {
		return 0, true
	}
	f, ok, _ := strtod(s)
	if !ok || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// formatScore is a score as Redis replies with it ("%.17g").
func formatScore(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

// d2string is Redis's d2string: integers in range as integers, else
// "%.17g" (ZSCAN's scores).
func d2string(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case f == 0:
		if math.Signbit(f) {
			return "-0"
		}
		return "0"
	}
	if f >= -float64(math.MaxInt64/2) && f <= float64(math.MaxInt64/2) && float64(int64(f)) == f {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

// scoreRange is a score interval, each end open or closed.
type scoreRange struct {
	min, max     float64
	minex, maxex bool
}

func parseScoreRange(min, max []byte) (scoreRange, bool) {
	var r scoreRange
	var ok bool
	bound := func(b []byte) (float64, bool, bool) {
		s := string(b)
		if strings.HasPrefix(s, "(") {
			f, ok := parseRangeScore(s[1:])
			return f, true, ok
		}
		f, ok := parseRangeScore(s)
		return f, false, ok
	}
	if r.min, r.minex, ok = bound(min); !ok {
		return r, false
	}
	if r.max, r.maxex, ok = bound(max); !ok {
		return r, false
	}
	return r, true
}

func (r scoreRange) gteMin(s float64) bool {
	if r.minex {
		return s > r.min
	}
	return s >= r.min
}

func (r scoreRange) lteMax(s float64) bool {
	if r.maxex {
		return s < r.max
	}
	return s <= r.max
}

// lexBound is a lexicographic range's end: a string, or "-" (below every
// string) or "+" (above every string).
type lexBound struct {
	s       []byte
	inf     int // -1 for "-", +1 for "+", 0 for a string
	exclude bool
}

type lexRange struct{ min, max lexBound }

func parseLexBound(b []byte) (lexBound, bool) {
	if len(b) == 0 {
		return lexBound{}, false
	}
	switch b[0] {
	case '+', '-':
		if len(b) != 1 {
			return lexBound{}, false
		}
		inf := 1
		if b[0] == '-' {
			inf = -1
		}
		return lexBound{inf: inf, exclude: true}, true
	case '(':
		return lexBound{s: b[1:], exclude: true}, true
	case '[':
		return lexBound{s: b[1:]}, true
	}
	return lexBound{}, false
}

func parseLexRange(min, max []byte) (lexRange, bool) {
	lo, ok1 := parseLexBound(min)
	hi, ok2 := parseLexBound(max)
	return lexRange{lo, hi}, ok1 && ok2
}

// cmpLex compares a member with a bound, as Redis's sdscmplex.
func cmpLex(m []byte, b lexBound) int {
	if b.inf != 0 {
		return -b.inf
	}
	return strings.Compare(string(m), string(b.s))
}

func (r lexRange) gteMin(m []byte) bool {
	if r.min.exclude {
		return cmpLex(m, r.min) > 0
	}
	return cmpLex(m, r.min) >= 0
}

func (r lexRange) lteMax(m []byte) bool {
	if r.max.exclude {
		return cmpLex(m, r.max) < 0
	}
	return cmpLex(m, r.max) <= 0
}
