package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestPanicInStepKeepsNothing: a command that panics after it changed a
// large list, inside a transaction or a pipeline's step, keeps none of the
// step's changes (the state it changed in place may be torn), and the node
// goes on serving.
func TestPanicInStepKeepsNothing(t *testing.T) {
	panicking(t, "testpanicpush", "rpush")

	_, c := openNode(t, t.TempDir())
	ctx := context.Background()
	var want []string
	for i := range 2000 {
		want = append(want, fmt.Sprint("e", i))
	}
	if err := c.RPush(ctx, "big", toAny(want)...).Err(); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		got, err := c.LRange(ctx, "big", 0, -1).Result()
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("%s: the list holds %d elements (last %v), %v; want the %d before", what, len(got), got[max(len(got)-3, 0):], err, len(want))
		}
	}

	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, "big", "a")
		p.Do(ctx, "testpanicpush", "big", "b")
		p.RPush(ctx, "big", "c")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("EXEC with a command that panics = %v, %v; want EXECABORT ... internal error", cmds, err)
	}
	check("after EXEC")

	// A pipeline: the commands that shared the panicking one's step are
	// answered with its error and kept nowhere; those in other steps are
	// kept whole.
	cmds, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, "big", "a")
		p.Do(ctx, "testpanicpush", "big", "b")
		p.RPush(ctx, "big", "c")
		return nil
	})
	if err := cmds[1].Err(); err == nil || err.Error() != "ERR internal error" {
		t.Fatalf("the panicking command answered %v", err)
	}
	for i, x := range []string{"a", "c"} {
		if cmds[2*i].Err() == nil {
			want = append(want, x)
		}
	}
	check("after the pipeline")
	if err := c.RPush(ctx, "big", "d").Err(); err != nil {
		t.Fatalf("RPUSH after the panics: %v", err)
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// panicking registers, for the test, a command named name that runs base's
// and then panics: a bug after the write.
func panicking(t *testing.T, name, base string) {
	t.Helper()
	spec := *commands[base]
	run := spec.fn
	spec.name = name
	spec.fn = func(n *Node, c *client, args [][]byte) {
		run(n, c, args)
		panic("a bug after the write")
	}
	commands[name] = &spec
	t.Cleanup(func() { delete(commands, name) })
}
