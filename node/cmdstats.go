package node

import (
	"maps"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Command statistics: what Redis keeps per command (calls, time, failed and
// rejected calls, a latency histogram) and per error prefix. INFO's
// commandstats, errorstats and latencystats, and the Prometheus metrics,
// read them.
//
// Every command adds to them, from the goroutines of many clients at once,
// so the counters are spread over statShards copies picked by client ID:
// one copy for the node would have the threads serving clients take turns
// at the same cache lines. A command costs a read of the monotonic clock
// (dispatch chains a pipeline's commands: one's end is the next one's
// start) and two uncontended atomic adds; its call count is the sum of its
// histogram.

// statShards copies of every command's counters (a power of two).
const statShards = 8

// The latency histogram is log-linear, as HDR histograms are: each power of
// two of nanoseconds from 2^latencyMinExp to 2^latencyMaxExp is cut into
// latencySub buckets (within 25% of each other), bucket 0 holds what is
// faster and the last bucket what is slower. Written in-project: Prometheus's
// histogram would put its own atomics on the hot path, per command, beside
// ours, and HDR libraries are not safe for concurrent writers.
const (
	latencyMinExp  = 7  // 128 ns
	latencyMaxExp  = 34 // 17 s
	latencySubBits = 2
	latencySub     = 1 << latencySubBits
	// LatencyBuckets is the number of buckets of a latency histogram.
	LatencyBuckets = 1 + (latencyMaxExp-latencyMinExp+1)*latencySub
)

// latencyBucket is the bucket that d falls in.
func latencyBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 1<<latencyMinExp {
		return 0
	}
	e := bits.Len64(v) - 1
	if e > latencyMaxExp {
		return LatencyBuckets - 1
	}
	sub := int(v>>(e-latencySubBits)) & (latencySub - 1)
	return 1 + (e-latencyMinExp)*latencySub + sub
}

// LatencyBucketBound is the upper bound (exclusive) of bucket i; the last
// bucket has none, and reports its lower bound's double.
func LatencyBucketBound(i int) time.Duration {
	if i == 0 {
		return 1 << latencyMinExp
	}
	e := latencyMinExp + (i-1)/latencySub
	sub := (i - 1) % latencySub
	return time.Duration(uint64(1)<<e + uint64(sub+1)<<(e-latencySubBits))
}

// cmdStat is one command's counters in one shard.
type cmdStat struct {
	nanos    atomic.Uint64
	failed   atomic.Uint64
	rejected atomic.Uint64
	buckets  [LatencyBuckets]atomic.Uint64
}

// statSlot numbers the commands that have statistics: every command of the
// table, and the subcommands of container commands (config|get), as
// Redis's commandstats show them.
type statSlot struct {
	name string // "get", "config|get"
}

// statSlots and statSubcommands are filled once, with the command table.
var (
	statSlots []statSlot
	// statSubcommands maps a container command to its subcommands' slots.
	statSubcommands = map[string]map[string]int{}
)

// knownSubcommands are the subcommands that have statistics of their own.
var knownSubcommands = map[string][]string{
	"client":  {"getname", "help", "id", "info", "kill", "list", "setinfo", "setname", "unblock"},
	"command": {"count", "docs", "help", "info", "list"},
	"config":  {"get", "help", "resetstat", "rewrite", "set"},
	"mesh":    {"clockoffset", "forget", "setaside", "version"},
}

// assignStatSlots gives every command and known subcommand its slot.
func assignStatSlots() {
	for _, s := range sortedCommands() {
		subs, container := knownSubcommands[s.name]
		if !container {
			s.slot = len(statSlots)
			statSlots = append(statSlots, statSlot{name: s.name})
			continue
		}
		s.slot = -1
		m := map[string]int{}
		for _, sub := range subs {
			m[sub] = len(statSlots)
			statSlots = append(statSlots, statSlot{name: s.name + "|" + sub})
		}
		statSubcommands[s.name] = m
	}
}

// statSlotOf is the slot args count under, or -1 (an unknown subcommand).
func statSlotOf(spec *commandSpec, args [][]byte) int {
	if spec.slot >= 0 {
		return spec.slot
	}
	if len(args) < 2 {
		return -1
	}
	if slot, ok := statSubcommands[spec.name][strings.ToLower(string(args[1]))]; ok {
		return slot
	}
	return -1
}

// maxErrorKinds bounds the error prefixes counted, as Redis does (128):
// clients cannot make the node keep a counter per error they provoke.
const maxErrorKinds = 128

// commandStats are a node's command and error statistics.
type commandStats struct {
	epoch time.Time // the monotonic clock's origin for timings
	// shards hold a command's counters from its first call in the shard:
	// every command's in every shard (about 900 bytes each) would be
	// megabytes, of which a node uses a few commands' worth.
	shards [statShards][]atomic.Pointer[cmdStat]

	errMu sync.Mutex
	errs  map[string]uint64 // by error prefix: ERR, WRONGTYPE...
	// errTotal counts every error reply (total_error_replies), also those
	// of prefixes past maxErrorKinds.
	errTotal atomic.Uint64
	// rejectedConns counts connections refused at accept (maxclients,
	// protected mode).
	rejectedConns atomic.Uint64
	ops           opsSampler
}

// opsSamples is how many samples instantaneous_ops_per_sec averages, as
// Redis's STATS_METRIC_SAMPLES (taken every 100 ms).
const opsSamples = 16

// opsSampler is instantaneous_ops_per_sec: the commands processed per
// second over the last samples, as Redis computes it.
type opsSampler struct {
	mu       sync.Mutex
	lastAt   time.Time
	lastOps  uint64
	rates    [opsSamples]float64
	next     int
	nsamples int
}

// sample records the total of commands processed at now.
func (o *opsSampler) sample(now time.Time, total uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.lastAt.IsZero() && now.After(o.lastAt) && total >= o.lastOps {
		o.rates[o.next] = float64(total-o.lastOps) / now.Sub(o.lastAt).Seconds()
		o.next = (o.next + 1) % opsSamples
		o.nsamples = min(o.nsamples+1, opsSamples)
	}
	o.lastAt, o.lastOps = now, total
}

func (o *opsSampler) perSecond() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.nsamples == 0 {
		return 0
	}
	var sum float64
	for i := range o.nsamples {
		sum += o.rates[i]
	}
	return uint64(sum/float64(o.nsamples) + 0.5)
}

// sampleOps takes a sample for instantaneous_ops_per_sec; the node calls
// it every 100 ms.
func (n *Node) sampleOps() {
	n.cmds.ops.sample(time.Now(), n.counts().commands.Load())
}

func newCommandStats() *commandStats {
	s := &commandStats{epoch: time.Now(), errs: map[string]uint64{}}
	for i := range s.shards {
		s.shards[i] = make([]atomic.Pointer[cmdStat], len(statSlots))
	}
	return s
}

// stat is slot's counters in client id's shard, made on first use.
func (s *commandStats) stat(id uint64, slot int) *cmdStat {
	p := &s.shards[id&(statShards-1)][slot]
	if st := p.Load(); st != nil {
		return st
	}
	p.CompareAndSwap(nil, new(cmdStat))
	return p.Load()
}

// clock reads the monotonic clock (one vDSO call: time.Since takes the
// monotonic reading only).
func (s *commandStats) clock() time.Duration { return time.Since(s.epoch) }

// ran records one call of slot by client id that took d.
func (s *commandStats) ran(id uint64, slot int, d time.Duration, failed bool) {
	st := s.stat(id, slot)
	st.nanos.Add(uint64(max(d, 0)))
	st.buckets[latencyBucket(d)].Add(1)
	if failed {
		st.failed.Add(1)
	}
}

// rejected records a call of slot refused before it ran (arity, NOAUTH).
func (s *commandStats) rejected(id uint64, slot int) {
	s.stat(id, slot).rejected.Add(1)
}

// errorReply counts an error reply by its prefix (its first word).
func (s *commandStats) errorReply(msg string) {
	s.errTotal.Add(1)
	prefix, _, _ := strings.Cut(msg, " ")
	s.errMu.Lock()
	if _, ok := s.errs[prefix]; ok || len(s.errs) < maxErrorKinds {
		s.errs[prefix]++
	}
	s.errMu.Unlock()
}

func (s *commandStats) reset() {
	for i := range s.shards {
		for j := range s.shards[i] {
			st := s.shards[i][j].Load()
			if st == nil {
				continue
			}
			st.nanos.Store(0)
			st.failed.Store(0)
			st.rejected.Store(0)
			for k := range st.buckets {
				st.buckets[k].Store(0)
			}
		}
	}
	s.errMu.Lock()
	clear(s.errs)
	s.errMu.Unlock()
	s.errTotal.Store(0)
	s.rejectedConns.Store(0)
}

// CommandStat is one command's statistics, summed over the shards.
type CommandStat struct {
	Name                    string // as Redis names it: "get", "config|get"
	Calls, Failed, Rejected uint64
	Time                    time.Duration // spent in the command, all calls
	// Latency counts calls by bucket (LatencyBucketBound).
	Latency [LatencyBuckets]uint64
}

// commands returns the statistics of every command called or rejected, by
// name.
func (s *commandStats) commands() []CommandStat {
	var out []CommandStat
	for slot := range statSlots {
		cs := CommandStat{Name: statSlots[slot].name}
		for i := range s.shards {
			st := s.shards[i][slot].Load()
			if st == nil {
				continue
			}
			cs.Time += time.Duration(st.nanos.Load())
			cs.Failed += st.failed.Load()
			cs.Rejected += st.rejected.Load()
			for k := range st.buckets {
				c := st.buckets[k].Load()
				cs.Latency[k] += c
				cs.Calls += c
			}
		}
		if cs.Calls+cs.Rejected > 0 {
			out = append(out, cs)
		}
	}
	slices.SortFunc(out, func(a, b CommandStat) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// errorKinds returns the error replies counted by prefix.
func (s *commandStats) errorKinds() map[string]uint64 {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return maps.Clone(s.errs)
}

// Percentile is the latency under which a fraction q of the calls ran, as
// the upper bound of the bucket holding it (0 without calls).
func (cs *CommandStat) Percentile(q float64) time.Duration {
	if cs.Calls == 0 {
		return 0
	}
	rank := uint64(q*float64(cs.Calls) + 0.5)
	rank = min(max(rank, 1), cs.Calls)
	var seen uint64
	for i, c := range cs.Latency {
		seen += c
		if seen >= rank {
			return LatencyBucketBound(i)
		}
	}
	return LatencyBucketBound(LatencyBuckets - 1)
}
