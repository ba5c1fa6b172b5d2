package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// jumpClock sets the running node's clock offset (MESH CLOCKOFFSET, which
// the nodes allow with --clock-offset-settable): its wall clock jumps while
// it runs, as when NTP steps it. Until the reply, the checker takes the node
// to have either offset.
func (n *node) jumpClock(offset time.Duration) error {
	n.mu.Lock()
	old := n.offset
	n.mu.Unlock()
	before := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := n.admin.Do(ctx, "MESH", "CLOCKOFFSET", offset.String()).Err(); err != nil {
		return fmt.Errorf("jump node %d's clock to %v: %w", n.i, offset, err)
	}
	after := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.offset = offset
	n.spans = append(n.spans, clockSpan{From: before, Offset: max(old, offset)}, clockSpan{From: after, Offset: offset})
	return nil
}

// checkClockForward finds a node's versions that went back: every
// acknowledged write at a node takes a version above that of every write
// the node acknowledged before it began, whatever its wall clock did
// (jumps, restarts with another offset, crashes). The shared writes record
// their versions; a DEL that found nothing took none of its own.
func checkClockForward(v *verdict, h []op) {
	byNode := map[int][]op{}
	for _, o := range h {
		wrote := o.Kind == opSet || o.Kind == opDel && o.Deleted == 1
		if wrote && o.Outcome == ok && o.Version.TS != 0 && strings.HasPrefix(o.Key, "s/") {
			byNode[o.Node] = append(byNode[o.Node], o)
		}
	}
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		ops := byNode[node]
		byDone := slices.SortedFunc(slices.Values(ops), func(a, b op) int { return a.Done.Compare(b.Done) })
		slices.SortFunc(ops, func(a, b op) int { return a.Invoke.Compare(b.Invoke) })
		var highest op // the highest version among the writes done so far
		j := 0
		for _, o := range ops {
			for ; j < len(byDone) && byDone[j].Done.Before(o.Invoke); j++ {
				if highest.Version.less(byDone[j].Version) {
					highest = byDone[j]
				}
			}
			if highest.Version.TS != 0 && !highest.Version.less(o.Version) {
				v.ClockBackwards++
				v.problem("clock went back: %v took a version not above that of %v, acknowledged before it", o, highest)
			}
		}
	}
}

// ackedByType counts the acknowledged writes by command.
func ackedByType(h []op) map[string]int {
	out := map[string]int{}
	for _, o := range h {
		if o.Outcome == ok && o.Kind != opRead {
			out[o.Kind.String()]++
		}
	}
	return out
}
