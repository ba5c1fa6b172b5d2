package longdouble

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestAddFormat checks INCRBYFLOAT's arithmetic and printing against what
// Redis 7 (C long double on x86-64) answers.
func TestAddFormat(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"0.1", "0.2", "0.3"},
		{"10.5", "0.1", "10.6"},
		{"10.6", "-5", "5.6"},
		{"5.6", "1.0e3", "1005.59999999999999998"},
		{"0", "123456789.123456789", "123456789.12345678899873747"},
		{"0", "1e-20", "0"},
		{"0", "-1e-20", "0"},
		{"0", "-0.0", "0"},
		{"0", "0x1p-2", "0.25"},
		{"1000", "0x10", "1016"},
		{"3", "1.5e10", "15000000003"},
		{"0", ".5", "0.5"},
		{"0", "5.", "5"},
		{"0", "+3", "3"},
	} {
		a, ok1 := Parse([]byte(tc.a))
		b, ok2 := Parse([]byte(tc.b))
		if !ok1 || !ok2 {
			t.Fatalf("%s + %s: not parsed", tc.a, tc.b)
		}
		sum := a.Add(a, b)
		if got := Format(sum); got != tc.want {
			t.Errorf("%s + %s = %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
	for _, bad := range []string{"", " 1", "1 ", "1_0", "nan", "NaN", "1e", "e5", ".", "-", "+-1", "0x", "1e5000", "1e-5000", "abc", "0b101", "1.2.3"} {
		if _, ok := Parse([]byte(bad)); ok {
			t.Errorf("%q parsed as a float", bad)
		}
	}
	for _, inf := range []string{"inf", "-inf", "Infinity", "+INF"} {
		if f, ok := Parse([]byte(inf)); !ok || !f.IsInf() {
			t.Errorf("%q is not infinity", inf)
		}
	}
}

// FuzzParse: any client bytes parse or are refused without a panic, the
// short path agrees with math/big's parser, and a
// parsed finite value prints as something that parses again to a value
// that prints the same (what a counter's display relies on).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0.1", "1e4000", "-0x1.8p3", "inf", "5.", "1e-4940"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if short, ok := parseShort(b); ok {
			if want := parseSlow(string(b)); short.Cmp(want) != 0 || short.Signbit() != want.Signbit() {
				t.Fatalf("%q: short path %v, math/big %v", b, short, want)
			}
		}
		x, ok := Parse(b)
		if !ok || x.IsInf() {
			return
		}
		s := Format(x)
		y, ok := Parse([]byte(s))
		if !ok {
			t.Fatalf("%q prints as %q, which does not parse", b, s)
		}
		if s2 := Format(y); s2 != s {
			t.Fatalf("%q prints as %q, and that as %q", b, s, s2)
		}
	})
}

// parseSlow is Parse without its short path: math/big's parser.
func parseSlow(s string) *big.Float {
	f, _, err := New().Parse(s, 10)
	if err != nil {
		panic(err)
	}
	return f
}

// TestParseShort: the short path gives the bits math/big's parser gives.
func TestParseShort(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for range 200_000 {
		digits := fmt.Sprint(r.Uint64N(1e19))
		if r.IntN(3) == 0 {
			digits = digits[:1+r.IntN(len(digits))]
		}
		s := digits
		if n := r.IntN(len(digits) + 1); r.IntN(4) > 0 {
			s = digits[:n] + "." + digits[n:]
		}
		s = []string{"", "-", "+"}[r.IntN(3)] + s
		got, ok := parseShort([]byte(s))
		if strings.Trim(s, "+-.") == "" {
			if ok {
				t.Fatalf("%q parsed", s)
			}
			continue
		}
		if !ok {
			t.Fatalf("%q: not parsed", s)
		}
		if want := parseSlow(s); got.Cmp(want) != 0 || got.Signbit() != want.Signbit() {
			t.Fatalf("%q: %v, math/big %v", s, got.Text('p', 0), want.Text('p', 0))
		}
	}
	for _, s := range []string{"12345678901234567890", "1e5", "0x10", "1.2.3", "", "+", "inf"} {
		if _, ok := parseShort([]byte(s)); ok {
			t.Errorf("%q taken by the short path", s)
		}
	}
}
