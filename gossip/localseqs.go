package gossip

import "sort"

// maxLocalRuns bounds the runs of local sequence numbers kept: 8 MiB at
// most, a run of one write each.
const maxLocalRuns = 1 << 19

// localSeqs are the log positions of this node's own writes, which peers
// acknowledge (push.go): counted for a peer's unacknowledged writes, and
// the last one at or before the committed frontier sampled for the stable
// time. They are held as runs of consecutive positions, which a peer's
// record applied in between breaks: a node alone, or the one writing,
// keeps one run however many writes it takes, where a position each was 8
// bytes a write.
type localSeqs struct {
	runs []seqRun
	// floor: a local write may be at any position up to it (before start,
	// or dropped past the bound).
	floor uint64
	// limit is the bound on runs (maxLocalRuns if 0).
	limit int
}

type seqRun struct{ first, last uint64 }

// add records a local write at seq, after every one recorded.
func (l *localSeqs) add(seq uint64) {
	if n := len(l.runs); n > 0 && l.runs[n-1].last+1 == seq {
		l.runs[n-1].last = seq
		return
	}
	limit := l.limit
	if limit == 0 {
		limit = maxLocalRuns
	}
	if len(l.runs) >= limit {
		half := limit / 2
		l.floor = l.runs[half-1].last
		l.runs = append(l.runs[:0], l.runs[half:]...)
	}
	l.runs = append(l.runs, seqRun{seq, seq})
}

// atOrBefore is the last local write at or before seq, as far as known:
// the floor if none is kept.
func (l *localSeqs) atOrBefore(seq uint64) uint64 {
	i := sort.Search(len(l.runs), func(i int) bool { return l.runs[i].first > seq })
	if i == 0 {
		return l.floor
	}
	return max(l.floor, min(l.runs[i-1].last, seq))
}

// after counts the local writes kept after seq.
func (l *localSeqs) after(seq uint64) int {
	i := sort.Search(len(l.runs), func(i int) bool { return l.runs[i].last > seq })
	n := 0
	for _, r := range l.runs[i:] {
		n += int(r.last - max(r.first, seq+1) + 1)
	}
	return n
}
