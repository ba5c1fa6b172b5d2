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
