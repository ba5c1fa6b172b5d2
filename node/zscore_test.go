package node

import (
	"math"
	"testing"
)

func TestParseScoreAsRedis(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1", 1, true}, {"-1.5", -1.5, true}, {"+2", 2, true}, {".5", 0.5, true}, {"5.", 5, true},
		{"1e3", 1000, true}, {"1E+3", 1000, true}, {"0x10", 16, true}, {"0x1p-2", 0.25, true}, {"0X1.8P1", 3, true},
		{"inf", math.Inf(1), true}, {"-Infinity", math.Inf(-1), true}, {"+INF", math.Inf(1), true},
		{"4.9e-324", 5e-324, true}, {"-0", 0, true},
		{"nan", 0, false}, {"-nan", 0, false}, {"", 0, false}, {" 1", 0, false}, {"1 ", 0, false},
		{"1e400", 0, false}, {"-1e400", 0, false}, {"1e-400", 0, false}, {"0x", 0, false}, {"1_0", 0, false},
		{"e5", 0, false}, {"5e", 0, false}, {"--1", 0, false}, {"infx", 0, false}, {".", 0, false},
	} {
		got, ok := parseScore([]byte(tc.in))
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("parseScore(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	// A range's bound is strtod without the range checks: empty is 0,
	// leading space is allowed, an overflow is infinite.
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"", 0, true}, {" 1", 1, true}, {"1e400", math.Inf(1), true}, {"1e-400", 0, true},
		{"1 ", 0, false}, {"nan", 0, false}, {" ", 0, false},
	} {
		got, ok := parseRangeScore(tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("parseRangeScore(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestScoreFormatsAsRedis(t *testing.T) {
	for _, tc := range []struct {
		f           float64
		reply, scan string
	}{
		{1, "1", "1"}, {1.1, "1.1000000000000001", "1.1000000000000001"}, {0.1, "0.10000000000000001", "0.10000000000000001"},
		{1e17, "1e+17", "100000000000000000"}, {1e100, "1e+100", "1e+100"}, {1e-7, "9.9999999999999995e-08", "9.9999999999999995e-08"},
		{math.Copysign(0, -1), "-0", "-0"}, {math.Inf(1), "inf", "inf"}, {math.Inf(-1), "-inf", "-inf"},
		{123456789012345678, "1.2345678901234568e+17", "123456789012345680"}, {-2.5, "-2.5", "-2.5"},
	} {
		if got := formatScore(tc.f); got != tc.reply {
			t.Errorf("formatScore(%v) = %q, want %q", tc.f, got, tc.reply)
		}
		if got := d2string(tc.f); got != tc.scan {
			t.Errorf("d2string(%v) = %q, want %q", tc.f, got, tc.scan)
		}
	}
}

// FuzzScoreParse: any client bytes as a score or a range's bound parse
// without panicking, and a score read back from its reply is the same
// double.
func FuzzScoreParse(f *testing.F) {
	for _, s := range []string{"1", "-1.5e3", "0x1p-2", "inf", "nan", "", "(5", "[a", "-", "+", " 1", "1e400"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, ok := parseScore(b); ok {
			back, ok := parseScore([]byte(formatScore(s)))
			if !ok || math.Float64bits(back) != math.Float64bits(s) {
				t.Fatalf("%q: %v reads back from %q as %v, %v", b, s, formatScore(s), back, ok)
			}
			if r, ok := parseRangeScore(string(b)); !ok || r != s {
				t.Fatalf("%q: a score %v but a bound %v, %v", b, s, r, ok)
			}
		}
		parseScoreRange(b, b)
		parseLexRange(b, b)
	})
}
