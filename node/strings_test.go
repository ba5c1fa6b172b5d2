package node

import (
	"testing"
)

// TestLongDouble checks INCRBYFLOAT's arithmetic and printing against what
// Redis 7 (C long double on x86-64) answers.
func TestLongDouble(t *testing.T) {
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
		a, ok1 := parseLongDouble([]byte(tc.a))
		b, ok2 := parseLongDouble([]byte(tc.b))
		if !ok1 || !ok2 {
			t.Fatalf("%s + %s: not parsed", tc.a, tc.b)
		}
		sum := a.Add(a, b)
		if got := formatLongDouble(sum); got != tc.want {
			t.Errorf("%s + %s = %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
	for _, bad := range []string{"", " 1", "1 ", "1_0", "nan", "NaN", "1e", "e5", ".", "-", "+-1", "0x", "1e5000", "1e-5000", "abc", "0b101", "1.2.3"} {
		if _, ok := parseLongDouble([]byte(bad)); ok {
			t.Errorf("%q parsed as a float", bad)
		}
	}
	for _, inf := range []string{"inf", "-inf", "Infinity", "+INF"} {
		if f, ok := parseLongDouble([]byte(inf)); !ok || !f.IsInf() {
			t.Errorf("%q is not infinity", inf)
		}
	}
}

func TestParseExtended(t *testing.T) {
	args := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i, a := range s {
			out[i] = []byte(a)
		}
		return out
	}
	ok := [][]string{{"EX", "1", "EX", "2"}, {"NX", "GET"}, {"KEEPTTL", "XX"}, {"pxat", "5"}}
	for _, a := range ok {
		if _, err := parseExtended(args(a...), true); err != nil {
			t.Errorf("SET %v: %v", a, err)
		}
	}
	bad := [][]string{{"EX", "1", "PX", "2"}, {"NX", "XX"}, {"KEEPTTL", "EX", "1"}, {"PERSIST"}, {"EX"}}
	for _, a := range bad {
		if _, err := parseExtended(args(a...), true); err == nil || err.Error() != errSyntax {
			t.Errorf("SET %v: %v, want a syntax error", a, err)
		}
	}
	if o, err := parseExtended(args("PERSIST"), false); err != nil || !o.persist {
		t.Errorf("GETEX PERSIST: %+v, %v", o, err)
	}
	for _, a := range [][]string{{"NX"}, {"KEEPTTL"}, {"PERSIST", "EX", "1"}, {"GET"}} {
		if _, err := parseExtended(args(a...), false); err == nil {
			t.Errorf("GETEX %v accepted", a)
		}
	}
}
