package record

import (
	"bytes"
	"fmt"
	"testing"
)

// TestAppendBinarySpill: an encoding spilled as it grows is AppendBinary's,
// and no piece is much past the bound, for a large list, sorted set and
// hash as for a string.
func TestAppendBinarySpill(t *testing.T) {
	const n = 20_000
	list := func() Record {
		return pushedList(n, func(Record) (lo, hi []byte) { return nil, nil })
	}
	zset := steppedTyped(t, n, KindZSet, func(op *TypedOp, i int) error {
		_, err := op.SetScore(fmt.Appendf(nil, "member:%012d", i), float64(i*7919%n))
		return err
	})
	hash := steppedTyped(t, n, KindHash, func(op *TypedOp, i int) error {
		_, err := op.SetField(fmt.Appendf(nil, "field:%012d", i), []byte("value"))
		return err
	})
	str := Record{Value: Value{Version: v(5, 1), Data: []byte("a string")}}
	for name, rec := range map[string]Record{"list": list(), "sorted set": zset, "hash": hash, "string": str} {
		want := AppendBinary(nil, rec)
		const at = 4096
		var got []byte
		pieces := 0
		dst := AppendBinarySpill(make([]byte, 0, 2*at), rec, at, func(b []byte) []byte {
			if len(b) > at+256 {
				t.Errorf("%s: a piece of %d bytes, bound %d", name, len(b), at)
			}
			got = append(got, b...)
			pieces++
			return b[:0]
		})
		got = append(got, dst...)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: spilled encoding of %d bytes differs from AppendBinary's %d", name, len(got), len(want))
		}
		if name != "string" && pieces < len(want)/(at+256) {
			t.Errorf("%s: %d bytes in %d pieces", name, len(want), pieces)
		}
	}
}
