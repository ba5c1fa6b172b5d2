package mesh

import (
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
