package node

import (
	"context"
	"strconv"
	"testing"
)

// TestObjectEncodingBySize: a hash past 128 fields and a set of integers
// past 512 members are Redis's hashtable however short their elements.
func TestObjectEncodingBySize(t *testing.T) {
	_, c := openNode(t, t.TempDir())
	ctx := context.Background()
	for _, k := range []struct {
		key   string
		add   string
		n     int
		small string
	}{{"h", "HSET", 128, "listpack"}, {"s", "SADD", 512, "intset"}} {
		args := []any{k.add, k.key}
		for i := range k.n + 1 {
			args = append(args, strconv.Itoa(i))
			if k.add == "HSET" {
				args = append(args, "v")
			}
			if i == k.n-1 || i == k.n {
				if err := c.Do(ctx, args...).Err(); err != nil {
					t.Fatal(err)
				}
				want := k.small
				if i == k.n {
					want = "hashtable"
				}
				if enc, err := c.ObjectEncoding(ctx, k.key).Result(); err != nil || enc != want {
					t.Fatalf("%s of %d elements: OBJECT ENCODING %q, %v; want %q", k.key, i+1, enc, err, want)
				}
				args = args[:2]
			}
		}
	}
}
