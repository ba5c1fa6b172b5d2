package mesh

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestCatchUpsScripts runs testdata/catchups: how a node's catch-ups are
// started, repeated, take turns and hold anti-entropy back. Commands:
//
//	trigger p=P          a catch-up from P is asked for
//	ended p=P [down]     P's catch-up ended (down: the link is gone)
//	take p=P             P's catch-up asks for the turn
//	give p=P             P gives up its turn or its place in the queue
//	yield p=P read=N     whether P, having read N entries, lets others go first
//	round                whether an anti-entropy round due now waits
//
// Each prints its answer, the turn's holder and the queue.
func TestCatchUpsScripts(t *testing.T) {
	var c CatchUps
	datadriven.RunTest(t, "testdata/catchups", func(t *testing.T, d *datadriven.TestData) string {
		var p uint64
		read := 0
		d.MaybeScanArgs(t, "p", &p)
		d.MaybeScanArgs(t, "read", &read)
		id := PeerID(p)
		var out string
		switch d.Cmd {
		case "trigger":
			out = fmt.Sprintf("start=%v", c.Trigger(id))
		case "ended":
			out = fmt.Sprintf("again=%v", c.Ended(id, !d.HasArg("down")))
		case "take":
			out = fmt.Sprintf("turn=%v", c.Take(id))
		case "give":
			next, ok := c.Give(id)
			out = "next=none"
			if ok {
				out = fmt.Sprintf("next=%d", next)
			}
		case "yield":
			out = fmt.Sprintf("yield=%v", c.Yield(id, read))
		case "round":
			out = fmt.Sprintf("defer=%v", c.DeferRound())
		default:
			t.Fatalf("unknown command %q", d.Cmd)
		}
		holder := "none"
		if c.held {
			holder = fmt.Sprint(c.holder)
		}
		return fmt.Sprintf("%s running=%v holder=%s queue=%v\n", out, c.Running(), holder, c.queue)
	})
}
