package record

import "testing"

func BenchmarkEncode(b *testing.B) {
	v := Version{TS: 1 << 40, Node: 7}
	r := Record{Value: Value{Version: v, Data: make([]byte, 100)}, Expiry: Expiry{Version: v, At: 1 << 41}}
	b.ReportAllocs()
	for b.Loop() {
		Encode(r)
	}
}

// BenchmarkEncodeIncr: an INCR's delta, what the log and a push take at
// every increment.
func BenchmarkEncodeIncr(b *testing.B) {
	v := Version{TS: 1<<40 | 5, Node: 7}
	s := CounterState{KindVersion: v, Count: Count{Node: 7, Start: 1<<40 | 1, Ver: v, Total: 42}}
	r := Record{Typed: s.Typed()}
	b.ReportAllocs()
	for b.Loop() {
		Encode(r)
	}
}
