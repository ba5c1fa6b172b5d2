package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The kinds of fault a schedule draws from.
const (
	faultPartition  = "partition"   // two groups cut off from each other
	faultOneWay     = "oneway"      // one group's packets to the other dropped, not the reverse
	faultLoss       = "loss"        // a share of the packets on some links dropped
	faultKill       = "kill"        // kill -9, restarted later
	faultPause      = "pause"       // SIGSTOP, SIGCONT later
	faultSkew       = "skew"        // restarted with its clock off by less than --max-clock-skew
	faultSkewBeyond = "skew-beyond" // restarted with its clock ahead by more than --max-clock-skew
	faultDiskFull   = "diskfull"    // its data directory's filesystem filled, freed later
	faultDelay      = "delay"       // some links' packets held back (and jittered) by the harness's proxy
	faultClockJump  = "clockjump"   // its clock jumped while it runs, twice, within or beyond --max-clock-skew either way, then back
)

var allFaults = []string{faultPartition, faultOneWay, faultLoss, faultKill, faultPause, faultSkew, faultSkewBeyond, faultDiskFull, faultDelay, faultClockJump}

// defaultFaults is what a run draws from unless -chaos.faults says
// otherwise: every kind.
var defaultFaults = allFaults

// parseFaults reads -chaos.faults.
func parseFaults(s string) ([]string, error) {
	switch s {
	case "":
		return defaultFaults, nil
	case "all":
		return allFaults, nil
	}
	var kinds []string
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(allFaults, k) {
			return nil, fmt.Errorf("unknown fault %q (known: %s)", k, strings.Join(allFaults, ","))
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// fault is one fault of a round, from Start to End after the round began.
type fault struct {
	Kind       string
	Node       int      // the node of a process fault
	A, B       []int    // the groups of a partition (oneway: A's packets to B are dropped)
	Links      [][2]int // the links of a loss or delay fault
	Pct        int      // the share of packets lost
	Delay      time.Duration
	Jitter     time.Duration // each chunk's delay is Delay plus up to Jitter
	Offset     time.Duration
	Offset2    time.Duration // a clock jump's second offset, from halfway
	Start, End time.Duration
}

func (f fault) String() string {
	var what string
	switch f.Kind {
	case faultPartition:
		what = fmt.Sprintf("%v | %v", f.A, f.B)
	case faultOneWay:
		what = fmt.Sprintf("%v -> %v dropped", f.A, f.B)
	case faultLoss:
		what = fmt.Sprintf("%d%% on %v", f.Pct, f.Links)
	case faultDelay:
		what = fmt.Sprintf("%v+[0,%v] on %v", f.Delay, f.Jitter, f.Links)
	case faultSkew, faultSkewBeyond:
		what = fmt.Sprintf("node %d clock %+v", f.Node, f.Offset)
	case faultClockJump:
		what = fmt.Sprintf("node %d clock jumps to %+v, then %+v", f.Node, f.Offset, f.Offset2)
	default:
		what = fmt.Sprintf("node %d", f.Node)
	}
	return fmt.Sprintf("%s %s from %v to %v", f.Kind, what, f.Start, f.End)
}

// round is a stretch of faults under the workload, healed at its end.
type round struct {
	Length time.Duration
	Faults []fault
}

// schedule draws rounds from a seed: the same seed, node count and fault
// kinds give the same rounds in the same order.
type schedule struct {
	rng                *rand.Rand
	nodes              int
	kinds              []string
	minRound, maxRound time.Duration
}

func newSchedule(seed int64, nodes int, kinds []string, minRound, maxRound time.Duration) *schedule {
	return &schedule{rng: rand.New(rand.NewPCG(uint64(seed), 0x636861_6f73)), nodes: nodes, kinds: kinds,
		minRound: minRound, maxRound: max(minRound, maxRound)}
}

// ms draws a whole number of milliseconds in [lo, max(lo, hi)].
func (s *schedule) ms(lo, hi time.Duration) time.Duration {
	hi = max(lo, hi)
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)/int64(time.Millisecond)+1))*time.Millisecond
}

// split divides the nodes in two non-empty groups.
func (s *schedule) split() (a, b []int) {
	perm := s.rng.Perm(s.nodes)
	cut := 1 + s.rng.IntN(s.nodes-1)
	a, b = perm[:cut], perm[cut:]
	slices.Sort(a)
	slices.Sort(b)
	return a, b
}

// links draws one to nodes-1 links between distinct nodes.
func (s *schedule) links() [][2]int {
	var links [][2]int
	for range 1 + s.rng.IntN(s.nodes-1) {
		x, y := s.rng.IntN(s.nodes), s.rng.IntN(s.nodes-1)
		if y >= x {
			y++
		}
		links = append(links, [2]int{min(x, y), max(x, y)})
	}
	return links
}

// jump draws a clock offset for a running node: within the bound either
// way, or beyond it ahead or behind.
func (s *schedule) jump() time.Duration {
	switch s.rng.IntN(3) {
	case 0:
		return s.ms(-maxSkew/2, maxSkew/2)
	case 1:
		return maxSkew + s.ms(time.Second, 4*time.Second)
	default:
		return -maxSkew - s.ms(time.Second, 4*time.Second)
	}
}

// next draws the next round: one or two faults, each starting in the
// first third of a stretch of minRound to maxRound and healed within it.
func (s *schedule) next() round {
	r := round{Length: s.ms(s.minRound, s.maxRound)}
	busy := map[int]bool{}
	for range 1 + s.rng.IntN(2) {
		f := fault{Kind: s.kinds[s.rng.IntN(len(s.kinds))]}
		f.Start = s.ms(0, r.Length/3)
		f.End = s.ms(f.Start+2*time.Second, r.Length-time.Second)
		switch f.Kind {
		case faultPartition, faultOneWay:
			f.A, f.B = s.split()
		case faultLoss:
			f.Links = s.links()
			f.Pct = []int{10, 30, 60, 90}[s.rng.IntN(4)]
		case faultDelay:
			f.Links = s.links()
			f.Delay = s.ms(20*time.Millisecond, time.Second)
			f.Jitter = s.ms(0, f.Delay/2)
		default:
			f.Node = s.rng.IntN(s.nodes)
			if busy[f.Node] {
				continue // one process fault per node per round
			}
			busy[f.Node] = true
			switch f.Kind {
			case faultSkew:
				f.Offset = s.ms(-maxSkew/2, maxSkew/2)
			case faultSkewBeyond:
				f.Offset = maxSkew + s.ms(time.Second, 4*time.Second)
			case faultClockJump:
				f.Offset, f.Offset2 = s.jump(), s.jump()
			}
		}
		r.Faults = append(r.Faults, f)
	}
	// The round ends with its last heal, so that the time to converge is
	// measured from the moment the last fault went away.
	r.Length = 0
	for _, f := range r.Faults {
		r.Length = max(r.Length, f.End)
	}
	return r
}
