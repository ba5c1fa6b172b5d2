package sim

import "time"

// gapPatience is how long a push gap may stay open before the reader reads
// the origin's log, as gossip's: a push it missed, or one that is late.
// Without it a lost push left the reader's cursor in the origin's log, and
// so what it acknowledges of it, behind for good, and the stable time with
// it.
const gapPatience = int64(time.Second)
