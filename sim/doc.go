// Package sim is redmesh's network simulator: thousands of nodes in one
// process, in virtual time, with one seeded random source (math/rand/v2's
// PCG), so that a seed names a run and the same seed gives the same report,
// byte for byte. `redmesh sim` is its command line.
//
// # Event model
//
// A run is a discrete-event simulation. The only clock is the virtual time
// of the event being handled; events sit in a min-heap ordered by time and,
// at equal times, by the order in which they were scheduled, and every
// random draw is taken from the one source in event order. Nothing iterates
// over a map where order could leak into the result, and the report holds
// no wall-clock value. Events are: a node's anti-entropy tick (every
// SyncInterval, ±5%, random phase), its fsync tick, the arrival of a
// message, a session timeout, a link coming up or being noticed down, a
// convergence check, and the scenario's own events (writes, partitions,
// heals, crashes, restarts, joins, departures, clock changes).
//
// # What is shared with a real node
//
// The simulator does not reimplement redmesh; it drives the real pieces:
//
//   - the merge rule: every received or written record goes through the
//     node's MergeFunc, which is record.MergeInto (a test swaps in a broken
//     one to show that the checker fails), and records travel as
//     record.Encode;
//   - typed writes: HSET, HDEL, HINCRBY, HINCRBYFLOAT, SADD, SREM, INCRBY,
//     INCRBYFLOAT and SET or DEL
//     over a typed key decide as the node's commands do (liveness,
//     WRONGTYPE, which elements they touch) and build their deltas with
//     record.TypedOp and record.OverValue, the code the node's commands
//     call, so a simulated node applies the same delta a real one would;
//   - the clock: each node has an hlc.Clock whose Now reads the virtual time
//     plus the node's offset and drift; remote timestamps are Observed, and
//     those too far ahead are refused and counted; the high-water mark
//     survives crashes as on a real node;
//   - reconciliation: a merkle.Session on each side, reading the node's
//     store through merkle.Local, its messages encoded with merkle.Marshal,
//     carried by the network model and decoded with merkle.Unmarshal, so
//     the byte counts are those of the real encoding;
//   - the replication core, mesh.Replicator, which makes every
//     replication decision a node makes: the choice of sync peer, per-peer
//     log cursors, the catch-up decision (read the peer's log from the
//     cursor, fall back to one Merkle session when it is truncated or of
//     another epoch, never a full copy), catch-up scheduling and turns and
//     anti-entropy's deferral, each origin's push progress and the gap that
//     sends a node to its log, what is acknowledged (applied and synced)
//     and when, the stable time, forgetting and setting aside. The
//     simulator tells it what arrived and what happened and carries out
//     what its Ready says (drive); with eager-push batching, the choice
//     of push targets (every linked peer, Replicator.PushTargets), which
//     copies are held and whom a push is relayed to (PushHeld, Relay), and
//     mesh's wire encoding of log requests, replies, push batches and
//     acknowledgements;
//   - the durability contract of each fsync mode.
//
// # What is modelled
//
// Storage is in memory: a store per node (a record per key and a
// merkle.Tree) stands for Badger. The write-ahead log keeps key numbers and
// each entry's record as the write left it, which a catch-up serves, as the
// node's log does (Config.LogAsCurrent serves the key's current record
// instead). Durability is an undo list: under
// everysec a sync happens every second at a random phase per node, under
// "no" at every OS flush (30 s by default), under always at once; a crash
// rolls back the store, the log and the peer cursors to the last sync (the
// log takes a new epoch if it lost entries, so no cursor is ever used
// against a log that changed under it) and marks the acknowledged writes it
// loses as at risk.
//
// Eager push carries a key's whole current record and a log entry the whole
// record as its write left it, where a real node's carries a typed key's
// delta: merge treats the two alike, but a large hash costs more bytes here
// than on the wire.
//
// The network is a model, the same on every link: each node's uplink has a
// bandwidth (a message waits for the ones queued before it); a message then
// takes the base latency plus a log-normal tail. Every message travels on a
// stream (a session, a catch-up, a link's push or acknowledgement stream),
// reliable and ordered: a lost packet costs a retransmission timeout.
// Partitions split the nodes into groups; nothing crosses between groups;
// links are noticed down after Detect and come back a random delay after a
// heal. The overlay is a random graph of Degree links per node (a full mesh,
// as discovery makes a real one, when Degree ≥ Nodes−1); nodes that join
// link to random live nodes, and a node left with few links makes a new
// one. Roots are exchanged at the end of each session (8 bytes each way,
// counted as metadata), which is what the peer choice uses.
//
// Eager push is the node's: a node pushes batches of its own writes, each
// with the header that says which range of its log it holds, to every peer
// linked to it. On a partial overlay the header carries a hop budget and a
// receiver to which the push was news relays it to a few of its peers, as
// the replication core says (mesh/relay.go); the nodes it misses get the
// origin's writes by anti-entropy or from a peer's log. A receiver that
// sees a hole in an origin's own pushes reads the origin's log once the
// gap outlasts mesh.GapPatience, as the node does; a relayed copy moves
// nothing of that.
//
// # The checker
//
// After the run (which stops once the live nodes agree after the last
// scenario event, or at the time limit) the checker verifies that:
//
//   - every live node holds identical records and an identical Merkle root;
//   - every acknowledged write is on every live node, or a newer version of
//     its key is (it was superseded), except writes the fsync mode allows to
//     be lost: those acknowledged but not yet synced when their node crashed
//     (under always there are none). Writes whose node left for good or is
//     down at the end are reported apart;
//   - no deleted key came back: a tombstone is never replaced by an older
//     value, checked on every merge as it happens and at the end;
//   - hashes, sets and counters hold what the acknowledged typed writes
//     imply, worked out from the writes alone, without merging: each
//     command tells the checker the elements it added (by dot), the dots it
//     observed and removes, and, per node, how far it observed the counts it
//     resets (read from its node's record before the write). An element
//     added and observed removed by no acknowledged write must be there;
//     one an acknowledged write observed must be gone; nothing else may be
//     there, and each element holds the value its write gave it. A counter
//     (a string's or a hash field's) must add exactly the acknowledged
//     increments that no acknowledged SET, DEL or field write observed. A
//     typed write whose node crashed before syncing it, left, or is down at
//     the end may or may not have taken effect: both are allowed, and a
//     counter may then lie in the range its increments allow.
//
// Typed workloads are the event "typed" (random commands on hash:NNNN,
// set:NNNN, counter:NNNN, zset:NNNN and list:NNNN keys, with a share of SETs
// and DELs of them, and with "floats: true" INCRBYFLOAT and HINCRBYFLOAT of
// integers for half the increments; a list's elements are checked as a
// hash's fields are, and its order is compared across the live nodes) and
// "command" (one client command at one node); the built-in scenario "typed"
// runs them under a partition, a crash with restart and clock skew, with
// fsync always unless told otherwise (TestCounterAfterLossyCrash covers a
// lazy fsync's lost increments). The report also counts, without failing,
// increments built on a count a crash took back (stale_counts) and
// hash-field counters no HGET shows (hidden_counters).
//
// # Garbage collection
//
// Collection is on unless Config.NoCollect: each node feeds a
// mesh.Stability (samples of its log and clock, its peers'
// acknowledgements of what its peers have synced and their reports, links
// up and down, the peer exchange each link starts with, members forgotten
// after Config.ForgetAfter) and collects its store with record.Collect at
// the stable time; acknowledgements travel over the network model as the
// node's do. Records a catch-up reads pass through record.Fresh at
// Stability.FreshHorizon. A forgotten member that comes back has its records
// filtered with record.Fresh, and drops its own writes up to the same
// horizon, told it by its peers. The checker takes a
// collected key as deleted, allows the writes set aside, and counts as a
// resurrection any value older than a collected delete or expiry that comes
// back. Writes can carry a TTL.
//
// A failed check makes the report say Pass false, with the failures; the
// command prints the seed and the command line that replays the run.
//
// # Figures
//
// The report gives the virtual time and the sync rounds from the last event
// to convergence, beside the push-pull gossip bound log₃ n + ln ln n; the
// sessions run (and how many found nothing), the catch-ups completed from
// logs and the Merkle fallbacks; bytes sent by class (session, catch-up,
// push), split into metadata and payload, in total and per node; and a
// series of divergent keys and cumulative bytes over virtual time, which
// Report.SVG plots.
package sim
