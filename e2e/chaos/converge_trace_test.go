package chaos

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"
)

var flagTraceConverge = flag.Bool("chaos.trace-converge", false,
	"log, while a round converges, what still differs: the typed keys whose contents differ, and each node's stable-time lag, collections, Merkle sessions, repairs and catch-ups")

// convergeTracer logs what keeps a round's nodes apart, a line each time
// it changes, so that the causes of a slow convergence can be told apart:
// contents still differing (repair or catch-up not done), contents equal
// but roots not (removal traces or tombstones one node has collected and
// another not yet: the stable time), or a node busy or unreachable.
type convergeTracer struct {
	r    *run
	last string
	at   time.Time
	// same is when the typed keys' contents were last found equal on
	// every node, with nothing differing since (0: they differ).
	same time.Duration
	seen bool
}

// sample logs the nodes' state after elapsed, unless it is what the last
// line said.
func (ct *convergeTracer) sample(elapsed time.Duration, roots []string) {
	if time.Since(ct.at) < 250*time.Millisecond {
		return
	}
	ct.at = time.Now()
	var b strings.Builder
	fmt.Fprintf(&b, "roots %d", len(slices.Compact(slices.Sorted(slices.Values(roots)))))
	diff := ct.typedDiff()
	switch {
	case diff != "none":
		ct.seen = false
	case !ct.seen:
		ct.same, ct.seen = elapsed, true
	}
	fmt.Fprintf(&b, "; typed keys differing: %s", diff)
	for _, n := range ct.r.nodes {
		info, err := n.info()
		if err != nil {
			fmt.Fprintf(&b, "; n%d: %v", n.i, err)
			continue
		}
		fmt.Fprintf(&b, "; n%d lag %s held-by %.6s tomb %s coll %s sess %s rep %s cu %s sync %s",
			n.i, info["gc_stable_lag_ms"], info["gc_held_back_by"], info["gc_tombstones"], info["gc_collected"],
			info["mesh_sessions"], info["mesh_keys_repaired"], info["mesh_catchups"], info["mesh_sync_in_progress"])
	}
	line := b.String()
	// Counters move with every line; compare what is not a counter.
	key := line[:strings.Index(line, "; n0")]
	if key == ct.last {
		return
	}
	ct.last = key
	ct.r.t.Logf("converging +%v: %s", elapsed.Round(time.Millisecond), line)
}

// contents is how long after the heal the typed keys' contents were
// equal on every node for good, given the roots became equal after
// converged.
func (ct *convergeTracer) contents(converged time.Duration) time.Duration {
	if ct.seen {
		return ct.same
	}
	return converged
}

// typedDiff names the typed keys (the shared classes: cnt, set, hash, zset,
// list) whose contents differ between nodes.
func (ct *convergeTracer) typedDiff() string {
	var diff []string
	for class := range typedClasses {
		if class == "tdel" {
			continue
		}
		for k := range max(typedKeys, listKeys) {
			key := fmt.Sprintf("%s/%d", class, k)
			var vals []string
			for _, n := range ct.r.nodes {
				vals = append(vals, readTyped(n, key))
			}
			if len(slices.Compact(vals)) > 1 {
				diff = append(diff, key)
			}
		}
	}
	slices.Sort(diff)
	if len(diff) == 0 {
		return "none"
	}
	return strings.Join(diff, ",")
}

// readTyped is a key's type and contents at a node, as one string.
func readTyped(n *node, key string) string {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	typ, err := n.admin.Type(ctx, key).Result()
	if err != nil {
		return "error: " + err.Error()
	}
	var cmd []any
	switch typ {
	case "string":
		cmd = []any{"GET", key}
	case "set":
		cmd = []any{"SMEMBERS", key}
	case "hash":
		cmd = []any{"HGETALL", key}
	case "zset":
		cmd = []any{"ZRANGE", key, 0, -1, "WITHSCORES"}
	case "list":
		cmd = []any{"LRANGE", key, 0, -1}
	default:
		return typ
	}
	v, err := n.admin.Do(ctx, cmd...).Result()
	if err != nil {
		return "error: " + err.Error()
	}
	if a, ok := v.([]any); ok && typ != "list" {
		s, _ := encodeElems(typ, a)
		return typ + s
	}
	return fmt.Sprint(typ, v)
}
