package mesh

import (
	"fmt"
	"time"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// Admit decides whether a record received from a peer (push, catch-up or
// Merkle repair) may be merged: its newest version (of a register, element,
// count or trace) is folded into the clock, and if it is further ahead of the local wall clock than
// the clock's skew limit the record is refused (the clock counts it). A
// record from a clock far ahead would otherwise win every conflict on its
// key for as long as that clock stays ahead; refused, it waits in its
// writer's store and is admitted once real time has caught up with it, or is
// superseded. Real nodes and the simulator both call this, so they refuse
// the same records.
func Admit(clock *hlc.Clock, rec record.Record) error {
	v := rec.Newest()
	if v.IsZero() {
		return nil
	}
	return clock.Observe(v.TS)
}

// RefusedError reports that Admit refused some records of a batch; the
// others were merged. A batch with a refused record is not applied as a
// whole: the push or log read that brought it must not count the writes
// it holds as applied here, or acknowledgements would let the mesh's
// stable time pass them and collect removals this node never saw — and
// the value it still holds would come back to every node by repair. So a
// push with one counts as missing (the origin's log is read again later)
// and a log read stops before it.
type RefusedError struct {
	// First is the index in the batch of the first record refused, Count
	// how many were.
	First, Count int
	// Err is why the first was refused; AdmitAt is when the clock admits it.
	Err     error
	AdmitAt time.Time
}

// AdmitAt is the wall time from which clock admits rec: when its newest
// version is no longer too far ahead.
func AdmitAt(clock *hlc.Clock, rec record.Record) time.Time {
	return rec.Newest().TS.Time().Add(-clock.MaxSkew())
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%d records refused, the first at %d: %v", e.Count, e.First, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }
