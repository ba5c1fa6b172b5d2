package mesh

import (
	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/record"
)

// MerkleVersions is a record's register versions (record.Versions) as the
// Merkle tree and its sessions take them: none for a key never written, and
// no trailing registers never written (a plain string has no typed state's
// digest). record.DigestTS equals merkle.DigestTS, so the tree moves a typed
// state, which merges as a whole, both ways when it differs. The slice is
// fresh: sessions may keep it.
func MerkleVersions(vs [3]record.Version) []merkle.Version {
	return AppendMerkleVersions(nil, vs)
}

// AppendMerkleVersions appends MerkleVersions(vs) to dst: into an array of
// the caller's, an update of the tree, which keeps nothing, allocates
// nothing.
func AppendMerkleVersions(dst []merkle.Version, vs [3]record.Version) []merkle.Version {
	n := len(vs)
	for n > 0 && vs[n-1].IsZero() {
		n--
	}
	for _, v := range vs[:n] {
		dst = append(dst, merkle.Version{TS: uint64(v.TS), Node: uint64(v.Node)})
	}
	return dst
}
