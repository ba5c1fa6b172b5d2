package mesh

import (
	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/merkle"
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

// MerkleVersions is a record's register versions (record.Versions) as the
// Merkle tree and its sessions take them: none for a key never written, and
// no trailing registers never written (a plain string has no typed state's
// digest). record.DigestTS equals merkle.DigestTS, so the tree moves a typed
// state, which merges as a whole, both ways when it differs. The slice is
// fresh: sessions may keep it.
func MerkleVersions(vs [3]record.Version) []merkle.Version {
	n := len(vs)
	for n > 0 && vs[n-1].IsZero() {
		n--
	}
	if n == 0 {
		return nil
	}
	out := make([]merkle.Version, n)
	for i, v := range vs[:n] {
		out[i] = merkle.Version{TS: uint64(v.TS), Node: uint64(v.Node)}
	}
	return out
}
