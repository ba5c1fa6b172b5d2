package mesh

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestProgressScripts runs testdata/progress: one origin's pushes and log
// reads as a receiver sees them. Commands (times in milliseconds):
//
//	reset                            a new, empty progress
//	push epoch=E prev=P to=T at=MS   a push of (P, T] arrives
//	read epoch=E acked=A             a log read applied up to A
//	news epoch=E to=T                whether a push up to T holds anything new
//	overdue at=MS [patience=MS]      whether a gap outlasted its patience (1000)
//
// Each prints its answer and the progress after it: epoch, acked, pushes
// waiting for a missing one.
func TestProgressScripts(t *testing.T) {
	p := &Progress{}
	datadriven.RunTest(t, "testdata/progress", func(t *testing.T, d *datadriven.TestData) string {
		var epoch, prev, to, acked, at uint64
		patience := uint64(1000)
		d.MaybeScanArgs(t, "epoch", &epoch)
		d.MaybeScanArgs(t, "prev", &prev)
		d.MaybeScanArgs(t, "to", &to)
		d.MaybeScanArgs(t, "acked", &acked)
		d.MaybeScanArgs(t, "at", &at)
		d.MaybeScanArgs(t, "patience", &patience)
		now := time.UnixMilli(int64(at))
		var out string
		switch d.Cmd {
		case "reset":
			p = &Progress{}
			return ""
		case "push":
			out = fmt.Sprintf("moved=%v", p.Pushed(epoch, prev, to, now))
		case "read":
			out = fmt.Sprintf("moved=%v", p.Advance(epoch, acked))
		case "news":
			out = fmt.Sprintf("news=%v", p.News(epoch, to))
		case "overdue":
			out = fmt.Sprintf("overdue=%v", p.Overdue(now, time.Duration(patience)*time.Millisecond))
		default:
			t.Fatalf("unknown command %q", d.Cmd)
		}
		return fmt.Sprintf("%s epoch=%d acked=%d waiting=%d\n", out, p.Epoch, p.Acked, p.Waiting())
	})
}

// TestProgressBoundsWaitingPushes: an origin (or a peer forging its pushes)
// that sends only pushes after a gap makes the receiver keep at most
// MaxAhead of them.
func TestProgressBoundsWaitingPushes(t *testing.T) {
	var p Progress
	for i := uint64(0); i < 3*MaxAhead; i++ {
		p.Pushed(1, 10+2*i, 11+2*i, time.Time{})
	}
	if p.Waiting() != MaxAhead || p.Acked != 0 {
		t.Fatalf("waiting %d, acked %d; want %d, 0", p.Waiting(), p.Acked, MaxAhead)
	}
}
