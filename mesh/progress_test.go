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
//	missed epoch=E to=T at=MS        a push up to T arrives and cannot be applied
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
		var admitAt time.Time
		if d.HasArg("admit-at") {
			var ms uint64
			d.ScanArgs(t, "admit-at", &ms)
			admitAt = time.UnixMilli(int64(ms))
		}
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
		case "missed":
			p.Missed(epoch, to, now, admitAt)
			out = "missed"
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

// TestPushRangeShowsHoles: a push after a local write that was not pushed
// starts after it, so a receiver that has the pushes before reads the log
// for the hole instead of taking the push as following on.
func TestPushRangeShowsHoles(t *testing.T) {
	var r PushRange
	r.Start(10)
	if prev := r.Next(11, 13); prev != 10 {
		t.Fatalf("first push: prev %d, want 10", prev)
	}
	r.Skip(14) // not pushed: the queue was full
	if prev := r.Next(15, 15); prev != 14 {
		t.Fatalf("push after a skipped write: prev %d, want 14", prev)
	}
	// A write skipped after the batch's first was queued (written while the
	// batch waited) shows in the push after it, not in this one.
	r.Skip(18)
	if prev := r.Next(16, 17); prev != 15 {
		t.Fatalf("prev %d, want 15", prev)
	}
	if prev := r.Next(19, 20); prev != 18 {
		t.Fatalf("prev %d, want 18", prev)
	}
	// A receiver of every push but the hole's never moves past it.
	var p Progress
	p.Advance(1, 10)
	for _, push := range [][2]uint64{{10, 13}, {14, 15}, {15, 17}, {18, 20}} {
		p.Pushed(1, push[0], push[1], time.Time{})
	}
	if p.Acked != 13 || p.Waiting() != 3 {
		t.Fatalf("receiver: acked %d, waiting %d; want 13, 3", p.Acked, p.Waiting())
	}
}
