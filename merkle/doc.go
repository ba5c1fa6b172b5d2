// Package merkle is redmesh's Merkle index and its reconciliation session:
// two nodes find the keys on which they differ, and move the newer records
// both ways, in a few round trips and a few hundred bytes per differing key.
// It imports nothing else of the project.
//
// # Shape
//
// The tree has a fixed shape (Shape): every interior node has FanOut children
// and the leaves, one per bucket, sit Depth levels below the root, whatever
// the number of keys. Two trees of the same shape can therefore be walked in
// step, node for node, and the shape (fan-out, depth, hash scheme) is checked
// in the session's first message; a mismatch is an ErrShapeMismatch on both
// sides.
//
// DefaultShape is 16-way and 4 deep: 65,536 buckets, about 15 keys each at 1M
// keys and 1,500 at 100M. Fan-out 16 is a balance: a wider node costs more
// bytes to search (each mismatched node costs FanOut short digests), a
// narrower one more levels and so more round trips. At 1M keys the two main
// costs per differing key, leaf digests (FanOut × 4 bytes) and leaf summaries
// (keys per bucket × 4 bytes), are equal near fan-out 16 with 4,096 parents
// of leaves, so 16^4 is also the cheapest shape that keeps the session at
// four round trips.
//
// A key's bucket is the top log2(Leaves) bits of KeyHash(key), xxHash64 of
// the key (BucketOf). Taking the top bits means that a store whose rows are
// prefixed with the big-endian KeyHash lists a bucket with one prefix scan
// (Shape.BucketRange), and that the layout does not depend on the shape.
//
// # Digests
//
// A leaf digest is the sum modulo 2^64 of EntryHash(key, versions) over the
// bucket's entries, so a write moves it in O(1): subtract the old entry
// hash, add the new one (Tree.Update), and storage persists the result in the
// same transaction. Tombstones are entries like any other. An interior digest
// is xxHash64 of its children's digests; a write only marks its ancestors
// dirty (stopping at the first already dirty), and a read refreshes the dirty
// nodes below it, so writes stay O(1) and a root read costs one hash per
// dirty node.
//
// A key carries a list of register versions; the caller fixes their order
// (redmesh: the value register, the expiry register, and for a hash or set
// the digest of its state). A Version is an HLC timestamp and a node ID,
// compared in that order; one whose timestamp is DigestTS is a digest of a
// state that merges as a whole, and any difference in it moves the key both
// ways. Trailing zero versions (registers never written) do not change the
// entry hash. A key is newer on a side if any of its registers is
// (NewerIn), so one key can need to move in both directions.
//
// # The session
//
// Session is a pure state machine in the style of etcd's raft: no
// goroutines, sockets, clocks or storage handles. It reads its side through
// Local (digests, a bucket's entries, a record's opaque payload), which the
// caller implements synchronously; the caller moves encoded messages and
// merges the Records that Step hands back with its own merge rule. MemStore
// and Drive do both in memory for tests and the simulator.
//
// All digests and entry hashes on the wire are 32-bit and salted with a
// per-session salt chosen by the initiator's caller: a collision can hide a
// difference in one session only, and the next session's salt exposes it.
// With the default shape the messages are (A initiates, B responds):
//
//	A→B Hello      shape, salt, the 16 level-1 digests      79 bytes
//	B→A Done       if they all match: 1 round trip, 81 bytes in all
//	B→A Digests    bitmap of A's mismatched nodes + B's level-2 digests below them
//	A→B Digests    bitmap + A's level-3 digests below B's mismatched nodes
//	B→A Digests    bitmap + B's leaf digests below them
//	A→B Summaries  bitmap of mismatched buckets + A's short entry hashes there
//	B→A Entries    bitmap of A's hashes B lacks + B's entries A lacks, in full
//	A→B Transfer   records newer on A + bitmap of B's entries A wants
//	B→A Transfer   the wanted records (omitted if none)
//
// So only one side sends digests at each level and the other answers with a
// mismatch bitmap and its next level at once: two levels per round trip, and
// four round trips for any number of differences. The side that receives
// B's full entries knows, for every differing key, both sides' versions and
// decides register by register which way it moves. Records move only towards
// the side that is older in some register.
//
// # Byte budget
//
// At 1M keys and 1,000 random differences (see bench/RESULTS.md), metadata is
// about 200 bytes per differing key: level-3 and leaf digests ≈ 74 bytes
// (64 bytes for each mismatched parent of leaves), leaf summaries ≈ 66 bytes
// (the ~16 keys sharing a differing key's bucket at 4 bytes each), full
// versions of the differing keys ≈ 36 bytes (a key, a one-byte tag per
// register, and 16 bytes per distinct version, since a SET writes its value
// and expiry at one version) and the keys that frame each record ≈ 22 bytes.
// Payloads are extra. Further savings are possible (records named by their
// position instead of their key, a per-message table of node IDs) but would
// cost clarity for under 10%.
//
// # Robustness
//
// Every decoder checks each count against a documented limit and the bytes
// left before allocating (MaxItems, MaxVersions, MaxKeyLen...), returns
// errors wrapping ErrMalformed, never panics, and aliases keys and payloads
// instead of copying them. A session refuses any message that does not fit
// its state with ErrProtocol and an Abort for the peer. The local tree may
// change between steps (writes go on during a session): that can only cause
// a repair to be missed or repeated in this session, never a wrong merge,
// because records are merged by version.
package merkle
