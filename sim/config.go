package sim

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// Fsync is a node's durability mode, as `redmesh serve --fsync`.
type Fsync string

// Durability modes.
const (
	// FsyncAlways acknowledges a write once it is synced: a crash loses
	// nothing acknowledged.
	FsyncAlways Fsync = "always"
	// FsyncEverysec syncs once a second: a crash loses what was written
	// since the node's last sync.
	FsyncEverysec Fsync = "everysec"
	// FsyncNo leaves syncing to the OS, modelled as a flush every
	// Config.OSFlush: a crash loses what was written since the last flush.
	FsyncNo Fsync = "no"
)

// MergeFunc is a node's merge rule: record.MergeInto on every real node. A
// test injects a broken one to show that the checker notices.
type MergeFunc func(local, incoming record.Record) (record.Record, bool)

// Network is the link model, the same for every pair of nodes.
type Network struct {
	// Latency is the one-way base delay of every message.
	Latency time.Duration `json:"latency_ns" yaml:"latency"`
	// Jitter is the mean of a log-normal delay added to Latency (sigma
	// JitterSigma).
	Jitter      time.Duration `json:"jitter_ns" yaml:"jitter"`
	JitterSigma float64       `json:"jitter_sigma" yaml:"jitter_sigma"`
	// Bandwidth is each node's uplink in bytes per second: a message
	// occupies it for len/Bandwidth, after the messages queued before it.
	// Zero is unlimited.
	Bandwidth int64 `json:"bandwidth_bytes_per_s" yaml:"bandwidth"`
	// Loss is the probability that a packet is lost. Every message travels
	// on a stream, so it is retransmitted after RTO, as TCP or QUIC would,
	// and may be lost again.
	Loss float64 `json:"loss" yaml:"loss"`
	// RTO is the retransmission delay of a lost stream packet.
	RTO time.Duration `json:"rto_ns" yaml:"rto"`
	// Detect is how long a node takes to notice that a link went down (a
	// partition, a crashed peer): its keep-alive timeout.
	Detect time.Duration `json:"detect_ns" yaml:"detect"`
	// Reconnect bounds the random delay before a link comes back up once
	// both ends can reach each other again.
	Reconnect time.Duration `json:"reconnect_ns" yaml:"reconnect"`
}

// DefaultNetwork is a WAN between sites: 20 ms ± a 10 ms log-normal tail,
// 10 MB/s uplinks, 0.1% loss.
var DefaultNetwork = Network{
	Latency: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, JitterSigma: 0.8,
	Bandwidth: 10 << 20, Loss: 0.001, RTO: 200 * time.Millisecond,
	Detect: 3 * time.Second, Reconnect: 5 * time.Second,
}

// Config is one run's parameters. The scenario supplies the timeline;
// Config the mesh and the model. Zero fields take the defaults in
// (*Config).withDefaults.
type Config struct {
	Seed      uint64
	Nodes     int   // nodes at the start
	Keys      int   // keys preloaded, identical on every starting node
	ValueSize int   // bytes per written value
	Degree    int   // overlay links per node (random graph); full mesh when ≥ Nodes-1
	Fsync     Fsync // durability mode of every node
	// Shape of every node's Merkle tree. The zero Shape chooses 16-way with
	// the fewest levels that leave at most about 16 keys per bucket (never
	// more than merkle.DefaultShape): a small mesh need not carry 65,536
	// buckets per node. The code is the same for any shape.
	Shape merkle.Shape
	// SyncInterval is the anti-entropy period: each node starts a session
	// with one peer this often (phases are random).
	SyncInterval time.Duration
	// SessionTimeout abandons a session that stopped progressing (a peer
	// crashed, a link was cut).
	SessionTimeout time.Duration
	PushBatch      int           // records per push batch, at most
	RelayFanout    int           // peers a push that was news is relayed to (0: mesh.DefaultFanout)
	LogRetain      int           // log entries each node keeps for catch-up
	CatchUpBatch   int           // log entries per catch-up reply
	OSFlush        time.Duration // how often the OS flushes under fsync "no"
	MaxSkew        time.Duration // hlc max skew
	Network        Network
	// NoPush and NoCatchUp switch eager push and log catch-up off, leaving
	// anti-entropy alone: to compare it with the push-pull gossip bound.
	NoPush    bool
	NoCatchUp bool
	// NoCollect switches garbage collection off (stable.go): no
	// acknowledgements, no collection, nothing forgotten. Collection is on
	// by default; this is for comparing with a mesh that keeps every
	// tombstone.
	NoCollect bool
	// ForgetAfter, if positive, makes each node forget a member silent for
	// longer, as `redmesh serve --forget-after`: only while linked to a
	// majority of the members for as long (mesh.Stability.Silent).
	ForgetAfter time.Duration
	// AckInterval is how often a node sends each connected peer its
	// acknowledgement and samples its log and clock (gossip's AckInterval
	// and stableEvery); it also collects this often.
	AckInterval time.Duration
	// CollectAhead and NoFresh break collection on purpose, for tests that
	// show the checker notices: nodes collect as if the stable time were
	// CollectAhead later than it is, or merge a returning forgotten
	// member's records as they are (no record.Fresh, and the member keeps
	// its own old writes).
	CollectAhead time.Duration
	NoFresh      bool
	// A catch-up serves each log entry's record as the write left it, as
	// the node's log does; LogAsCurrent serves the key's current record
	// instead (not what the node does). The two differ under collection:
	// a peer reading from a cursor that lags (entries of other nodes'
	// writes after the last local write are covered by no acknowledgement
	// the stable time waits for) gets back elements and values whose
	// removal it has applied and collected since. The node passes what a
	// catch-up brings through record.Fresh at its fresh horizon
	// (mesh.Stability.FreshHorizon: its stable time, which every member,
	// itself included, has applied), so what it lacks of them it removed;
	// NoFreshCatchUp does not (and brings them back).
	LogAsCurrent   bool
	NoFreshCatchUp bool
	// A node acknowledges only what it has synced (its cursors as of its
	// last fsync), as the node does; AckUnsynced acknowledges what it has
	// applied. Under a lazy fsync such an acknowledgement counts (as it
	// arrives) before its peer can notice that the node lost it in a crash
	// (Network.Detect after).
	AckUnsynced bool
	// Check is how often convergence is checked and the series sampled.
	Check time.Duration
	// MaxTime stops a run that has not converged this long after its last
	// scenario event.
	MaxTime time.Duration
	// Merge returns node i's merge rule; nil means record.MergeInto everywhere.
	Merge func(node int) MergeFunc
	// Progress, if set, is called as virtual time advances, with the time
	// reached and the time by which the run will have ended at the latest.
	Progress func(now, horizon time.Duration)
	// Decisions, if set, is called with every Ready a node's replicator
	// returns, before it is carried out: what the node decided, for
	// comparing with the same scenario run by gossip; index gives the
	// node a peer ID names.
	Decisions func(node int, rd mesh.Ready, index func(mesh.PeerID) int)
	// Command is the command line that replays this run, for the report.
	Command string
}

func (c Config) withDefaults() Config {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Nodes, 100)
	def(&c.ValueSize, 64)
	def(&c.Degree, 16)
	def(&c.PushBatch, 64)
	def(&c.LogRetain, 4096)
	def(&c.CatchUpBatch, 1024)
	defd(&c.SyncInterval, time.Second)
	defd(&c.SessionTimeout, 10*time.Second)
	defd(&c.OSFlush, 30*time.Second)
	defd(&c.MaxSkew, time.Minute)
	defd(&c.Check, 100*time.Millisecond)
	defd(&c.AckInterval, 250*time.Millisecond)
	defd(&c.MaxTime, 10*time.Minute)
	if c.Fsync == "" {
		c.Fsync = FsyncEverysec
	}
	if c.Network == (Network{}) {
		c.Network = DefaultNetwork
	}
	if c.Network.JitterSigma == 0 {
		c.Network.JitterSigma = DefaultNetwork.JitterSigma
	}
	if c.Network.RTO == 0 {
		c.Network.RTO = DefaultNetwork.RTO
	}
	if c.Shape == (merkle.Shape{}) {
		c.Shape = AutoShape(c.Keys)
	}
	return c
}

// AutoShape is the shape used for keys keys when none is given: fan-out 16
// and the fewest levels (at least 2, at most merkle.DefaultShape's 4) that
// leave about 16 keys or fewer per bucket.
func AutoShape(keys int) merkle.Shape {
	depth := 2
	for depth < merkle.DefaultShape.Depth && keys > 16<<(4*depth) {
		depth++
	}
	return merkle.Shape{FanOut: 16, Depth: depth, Hash: merkle.HashXXH64}
}

func (c Config) validate() error {
	switch c.Fsync {
	case FsyncAlways, FsyncEverysec, FsyncNo:
	default:
		return fmt.Errorf("sim: fsync %q: want always, everysec or no", c.Fsync)
	}
	if c.Nodes < 1 || c.Nodes > 1<<20 {
		return fmt.Errorf("sim: %d nodes: want 1 to %d", c.Nodes, 1<<20)
	}
	if c.Keys < 0 || c.Keys > 1<<26 {
		return fmt.Errorf("sim: %d keys out of range", c.Keys)
	}
	if err := c.Shape.Validate(); err != nil {
		return err
	}
	if c.Shape.Leaves() > 1<<20 || bits.Len(uint(c.Shape.Leaves())) == 0 {
		return fmt.Errorf("sim: shape %v too large", c.Shape)
	}
	n := c.Network
	if n.Loss < 0 || n.Loss > 0.5 {
		return fmt.Errorf("sim: loss %v too high to model streams (max 0.5)", n.Loss)
	}
	if c.ForgetAfter < 0 || c.AckInterval < time.Millisecond || c.CollectAhead < 0 {
		return fmt.Errorf("sim: forget-after %v, ack interval %v or collect-ahead %v out of range", c.ForgetAfter, c.AckInterval, c.CollectAhead)
	}
	if c.ValueSize < 1 || c.ValueSize > 1<<20 {
		return fmt.Errorf("sim: value size %d out of range", c.ValueSize)
	}
	return nil
}
