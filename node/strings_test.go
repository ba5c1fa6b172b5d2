package node

import (
	"testing"
)

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
