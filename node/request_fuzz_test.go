package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/redmesh/redmesh/resp"
)

// FuzzRequest drives arbitrary client bytes through the whole request path:
// the bounded reader and dispatch of every command parsed to
// a real node. Nothing may panic the process (a command's own panic is
// caught and counted, and must not happen either).
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"SET a 1 EX 10\r\nGET a\r\nTTL a\r\n",
		"*1\r\n$9223372036854775807\r\n",
		"MULTI\r\nSET x 1\r\nEXEC\r\n",
		"*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n",
		"\"unbalanced quote\r\n",
		"*-1\r\n*0\r\n",
		"ZADD z 1 a 2.5 b\r\nZINCRBY z 1 a\r\nZRANGE z 0 -1 WITHSCORES\r\nZRANGEBYSCORE z (1 +inf LIMIT 0 1\r\n",
		"ZADD z 0 a 0 b\r\nZRANGEBYLEX z [a (c\r\nZUNIONSTORE d 2 z z WEIGHTS 1 2\r\nZPOPMIN z 5\r\nZSCAN d 0\r\n",
		"GEOADD g 13.361389 38.115556 p 180 85.05112878 e\r\nGEOSEARCH g FROMMEMBER p BYBOX 400 400 km WITHDIST WITHHASH WITHCOORD\r\nGEORADIUS g 0 0 1e9 km STOREDIST d COUNT 3 ANY\r\nGEODIST g p e mi\r\nGEOHASH g p\r\n",
	} {
		f.Add([]byte(seed))
	}
	n, err := Open(Config{DataDir: f.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := resp.NewReader(bytes.NewReader(in), 1<<20)
		buf := &replyBuf{}
		c := &client{n: n, w: buf, ctx: context.Background(), authed: true}
		for i := 0; i < 64; i++ {
			args, err := rd.ReadCommand()
			if err != nil {
				break
			}
			if strings.EqualFold(string(args[0]), "client") {
				continue // acts on network connections, which this test has none of
			}
			if spec := lookup(args[0]); spec != nil && slices.Contains(spec.flags, "blocking") {
				continue // waits on its network connection, likewise
			}
			before := n.stats.panics.Load()
			n.runPipeline(c, [][][]byte{args})
			if n.stats.panics.Load() != before {
				t.Fatalf("command %q panicked", args)
			}
		}
	})
}
