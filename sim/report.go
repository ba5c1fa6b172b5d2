package sim

import (
	"encoding/json"
	"math"
	"slices"
	"time"
)

// Report is what a run found. Its JSON has a fixed field order, no maps and
// no wall-clock values, so one seed gives the same bytes every time.
type Report struct {
	Scenario    string       `json:"scenario"`
	Seed        uint64       `json:"seed"`
	Command     string       `json:"command"`
	Pass        bool         `json:"pass"`
	Failures    []string     `json:"failures"`
	Config      ReportConfig `json:"config"`
	Timeline    []Mark       `json:"timeline"`
	Convergence Convergence  `json:"convergence"`
	Sessions    Sessions     `json:"sessions"`
	CatchUp     CatchUps     `json:"catch_up"`
	Push        Push         `json:"push"`
	Network     NetStats     `json:"network"`
	Nodes       NodeStats    `json:"nodes"`
	Bytes       Bytes        `json:"bytes"`
	GC          GC           `json:"gc"`
	Check       Check        `json:"check"`
	Series      []Sample     `json:"series"`
}

// ReportConfig is the run's effective configuration.
type ReportConfig struct {
	Nodes          int     `json:"nodes"`
	Keys           int     `json:"keys"`
	ValueSize      int     `json:"value_size"`
	Degree         int     `json:"degree"`
	Shape          string  `json:"shape"`
	Leaves         int     `json:"leaves"`
	Fsync          Fsync   `json:"fsync"`
	SyncIntervalMs int64   `json:"sync_interval_ms"`
	SessionTimeout int64   `json:"session_timeout_ms"`
	PushBatch      int     `json:"push_batch"`
	RelayFanout    int     `json:"relay_fanout"`
	LogRetain      int     `json:"log_retain"`
	CatchUpBatch   int     `json:"catch_up_batch"`
	OSFlushMs      int64   `json:"os_flush_ms"`
	MaxSkewMs      int64   `json:"max_skew_ms"`
	NoPush         bool    `json:"no_push"`
	NoCatchUp      bool    `json:"no_catch_up"`
	Collect        bool    `json:"collect"`
	ForgetAfterMs  int64   `json:"forget_after_ms"`
	AckIntervalMs  int64   `json:"ack_interval_ms"`
	Network        Network `json:"network"`
}

// GC is what garbage collection did: what it dropped, what it set aside,
// and how far the stable time lagged behind each node's clock (sampled at
// every node's collection, once it had a stable time).
type GC struct {
	TombstonesCollected int64 `json:"tombstones_collected"` // keys dropped whole (deleted or expired)
	ExpiredCollected    int64 `json:"expired_collected"`    // ... of which expired, never swept before
	TracesCollected     int64 `json:"traces_collected"`     // removal traces dropped from typed keys
	// CollectedOnArrival counts deleted keys a peer sent that were already
	// collectable here, so not stored (its stable time lagged behind).
	CollectedOnArrival int64 `json:"collected_on_arrival"`
	// CatchUpSetAside counts catch-up records record.Fresh took something
	// from at the receiver's fresh horizon (mesh.Stability.FreshHorizon).
	CatchUpSetAside int64 `json:"catch_up_set_aside,omitempty"`
	// Forgotten counts members forgotten for silence (ForgetAfter), by
	// each node; Returned forgotten members that linked up again.
	Forgotten int64 `json:"forgotten"`
	Returned  int64 `json:"returned"`
	// SetAside counts records from a returned member that record.Fresh
	// kept from merging (in part or whole); OwnSetAside the records a
	// returning node dropped of its own, told its writes were set aside.
	SetAside    int64 `json:"set_aside"`
	OwnSetAside int64 `json:"own_set_aside"`
	Rejoins     int64 `json:"rejoins"`
	// StableLag is now − stable time at each node's collection tick;
	// WithoutStable the ticks at which a node had none yet.
	StableLagP50Ms int64 `json:"stable_lag_p50_ms"`
	StableLagMaxMs int64 `json:"stable_lag_max_ms"`
	WithoutStable  int64 `json:"ticks_without_stable"`
	Acks           int64 `json:"acks"`
	AckBytes       int64 `json:"ack_bytes"`
}

// Mark is a scenario event on the timeline.
type Mark struct {
	TMillis int64  `json:"t_ms"`
	What    string `json:"what"`
}

// Convergence says when the live nodes agreed again.
type Convergence struct {
	Converged bool `json:"converged"`
	// EndMs is the virtual time at which the run stopped; TimelineEndMs the
	// time of the scenario's last event (a heal, the last write...).
	EndMs         int64 `json:"end_ms"`
	TimelineEndMs int64 `json:"timeline_end_ms"`
	// AfterMs is the time from the last event to convergence, in AfterRounds
	// sync intervals; GossipBound is log₃ n + ln ln n, the rounds push-pull
	// gossip needs to spread one rumour to n nodes.
	AfterMs       int64   `json:"after_ms"`
	AfterRounds   float64 `json:"after_rounds"`
	GossipBound   float64 `json:"gossip_bound_rounds"`
	LiveNodes     int     `json:"live_nodes"`
	PeakDivergent int     `json:"peak_divergent_keys"`
	Events        int64   `json:"events"`
}

// Sessions counts Merkle sessions.
type Sessions struct {
	Rounds     int64 `json:"rounds"`
	RoundsBusy int64 `json:"rounds_skipped_busy"`
	RoundsNone int64 `json:"rounds_without_peer"`
	Started    int64 `json:"started"`
	Completed  int64 `json:"completed"`
	Equal      int64 `json:"found_equal"`
	TimedOut   int64 `json:"timed_out"`
	Errors     int64 `json:"errors"`
	// Refused: the peer did not take the session (mesh.Replicator.AcceptSession).
	Refused    int64 `json:"refused"`
	KeysPulled int64 `json:"keys_pulled"`
	KeysPushed int64 `json:"keys_pushed"`
}

// CatchUps counts log catch-ups on (re)connection and their Merkle fallbacks.
type CatchUps struct {
	Started         int64 `json:"started"`
	WithoutCursor   int64 `json:"without_cursor"`
	ByLog           int64 `json:"completed_by_log"`
	LogRecords      int64 `json:"log_records"`
	MerkleFallbacks int64 `json:"merkle_fallbacks"`
	FallbacksDone   int64 `json:"merkle_fallbacks_completed"`
}

// Push counts eager push.
type Push struct {
	Batches         int64 `json:"batches"`
	RecordsReceived int64 `json:"records_received"`
	// Relayed: copies relayed on (mesh.Replicator.Relay); Held: copies
	// that arrived with their records already here, left unmerged.
	Relayed int64 `json:"relayed"`
	Held    int64 `json:"held"`
	// PropagationP50Ms and P99Ms: from a push's send at its origin to its
	// merge at each node it was news to, by whatever path, in virtual time;
	// Merged, how many such merges.
	PropagationP50Ms int64 `json:"propagation_p50_ms"`
	PropagationP99Ms int64 `json:"propagation_p99_ms"`
	Merged           int64 `json:"merged"`
}

// NetStats counts messages.
type NetStats struct {
	Messages     int64 `json:"messages"`
	Dropped      int64 `json:"dropped"`
	Retransmits  int64 `json:"retransmits"`
	Connects     int64 `json:"connects"`
	DecodeErrors int64 `json:"decode_errors"`
}

// NodeStats counts what happened to nodes.
type NodeStats struct {
	Total      int   `json:"total"`
	Crashes    int64 `json:"crashes"`
	RolledBack int64 `json:"changes_lost_in_crashes"`
	Left       int64 `json:"left"`
	Joined     int64 `json:"joined"`
}

// Bytes counts what was sent: metadata is everything but record payloads.
type Bytes struct {
	Meta           int64        `json:"meta"`
	Payload        int64        `json:"payload"`
	ByClass        []ClassBytes `json:"by_class"`
	PerNodeMeta    Dist         `json:"per_node_meta"`
	PerNodePayload Dist         `json:"per_node_payload"`
}

// ClassBytes is one traffic class's bytes.
type ClassBytes struct {
	Class   string `json:"class"`
	Meta    int64  `json:"meta"`
	Payload int64  `json:"payload"`
}

// Dist summarises a per-node figure.
type Dist struct {
	Mean float64 `json:"mean"`
	P50  int64   `json:"p50"`
	P99  int64   `json:"p99"`
	Max  int64   `json:"max"`
}

// Sample is one point of the series: divergent keys and cumulative bytes.
type Sample struct {
	TMillis   int64 `json:"t_ms"`
	Divergent int   `json:"divergent_keys"`
	Meta      int64 `json:"meta_bytes"`
	Payload   int64 `json:"payload_bytes"`
}

// MaxSeries bounds the samples kept in a report.
const MaxSeries = 400

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func dist(v []int64) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	slices.Sort(v)
	var sum int64
	for _, x := range v {
		sum += x
	}
	return Dist{
		Mean: math.Round(float64(sum)/float64(len(v))*10) / 10,
		P50:  v[len(v)/2], P99: v[min(len(v)-1, len(v)*99/100)], Max: v[len(v)-1],
	}
}

func (s *Sim) report() *Report {
	c := &s.cfg
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	r := &Report{
		Scenario: s.sc.Name, Seed: c.Seed, Command: c.Command,
		Config: ReportConfig{
			Nodes: c.Nodes, Keys: c.Keys, ValueSize: c.ValueSize, Degree: c.Degree,
			Shape: c.Shape.String(), Leaves: c.Shape.Leaves(), Fsync: c.Fsync,
			SyncIntervalMs: ms(c.SyncInterval), SessionTimeout: ms(c.SessionTimeout),
			PushBatch: c.PushBatch, RelayFanout: c.RelayFanout, LogRetain: c.LogRetain,
			CatchUpBatch: c.CatchUpBatch, OSFlushMs: ms(c.OSFlush), MaxSkewMs: ms(c.MaxSkew),
			Network: c.Network, NoPush: c.NoPush, NoCatchUp: c.NoCatchUp,
			Collect: !c.NoCollect, ForgetAfterMs: ms(c.ForgetAfter), AckIntervalMs: ms(c.AckInterval),
		},
		Timeline: s.timeline,
	}
	check, fails := s.check()
	if !s.converged && len(fails) == 0 {
		fails = append(fails, "did not converge before the time limit")
	} else if !s.converged {
		fails = append([]string{"did not converge before the time limit"}, fails...)
	}
	r.Check, r.Failures, r.Pass = check, fails, len(fails) == 0
	if r.Failures == nil {
		r.Failures = []string{}
	}
	st := &s.st
	live := check.LiveNodes
	conv := Convergence{Converged: s.converged, EndMs: s.now / 1e6, TimelineEndMs: s.timelineEnd / 1e6,
		LiveNodes: live, PeakDivergent: st.peakDivergent, Events: st.events}
	if s.converged {
		conv.AfterMs = (s.convergedAt - s.timelineEnd) / 1e6
		conv.AfterRounds = round2(float64(s.convergedAt-s.timelineEnd) / float64(c.SyncInterval))
	}
	if live > 1 {
		n := float64(live)
		conv.GossipBound = round2(math.Log(n)/math.Log(3) + math.Log(math.Max(math.Log(n), 1)))
	}
	r.Convergence = conv
	r.Sessions = Sessions{Rounds: st.rounds, RoundsBusy: st.roundsBusy, RoundsNone: st.roundsAlone,
		Started: st.sessions, Completed: st.sessionsDone, Equal: st.sessionsEqual,
		TimedOut: st.sessionTimeouts, Errors: st.sessionErrors, Refused: st.sessionsRefused, KeysPulled: st.keysPulled, KeysPushed: st.keysPushed}
	r.CatchUp = CatchUps{Started: st.catchUps, WithoutCursor: st.catchUpsNoCursor, ByLog: st.catchUpsByLog,
		LogRecords: st.logEntries, MerkleFallbacks: st.fallbacks, FallbacksDone: st.fallbacksDone}
	r.Push = Push{Batches: st.pushBatches, RecordsReceived: st.pushRecords, Relayed: st.pushRelayed, Held: st.pushHeld,
		PropagationP50Ms: st.propagation.quantile(0.5), PropagationP99Ms: st.propagation.quantile(0.99), Merged: st.propagation.n}
	r.Network = NetStats{Messages: st.messages, Dropped: st.dropped,
		Retransmits: st.retransmits, Connects: st.connects, DecodeErrors: st.decodeErrors}
	r.Nodes = NodeStats{Total: len(s.nodes), Crashes: st.crashes, RolledBack: st.rolledBack, Left: st.left, Joined: st.joined}
	var meta, pay []int64
	var classes [numClasses]byteCount
	for _, n := range s.nodes {
		var m, p int64
		for i, b := range n.sent {
			m += b.meta
			p += b.payload
			classes[i].meta += b.meta
			classes[i].payload += b.payload
		}
		meta, pay = append(meta, m), append(pay, p)
	}
	r.Bytes = Bytes{Meta: st.totalMeta, Payload: st.totalPayload, PerNodeMeta: dist(meta), PerNodePayload: dist(pay)}
	for i, b := range classes {
		r.Bytes.ByClass = append(r.Bytes.ByClass, ClassBytes{Class: classNames[i], Meta: b.meta, Payload: b.payload})
	}
	g := &s.gst
	r.GC = GC{TombstonesCollected: g.tombstones, ExpiredCollected: g.expired, TracesCollected: g.traces, CollectedOnArrival: g.ingress, CatchUpSetAside: g.staleLogged, Forgotten: g.forgotten, Returned: g.returned,
		SetAside: g.setAside, OwnSetAside: g.ownSetAside, Rejoins: g.rejoins, WithoutStable: g.noStable,
		Acks: g.acks, AckBytes: classes[classAck].meta}
	if len(g.lags) > 0 {
		lags := slices.Clone(g.lags)
		slices.Sort(lags)
		r.GC.StableLagP50Ms, r.GC.StableLagMaxMs = lags[len(lags)/2], lags[len(lags)-1]
	}
	r.Series = thin(s.series, MaxSeries)
	return r
}

// thin keeps at most max samples, evenly spaced, always the last, and the
// peak of divergence in each stretch so a short spike stays visible.
func thin(in []Sample, max int) []Sample {
	if len(in) <= max {
		return in
	}
	k := (len(in) + max - 1) / max
	out := make([]Sample, 0, max+1)
	for i := 0; i < len(in); i += k {
		best := in[i]
		for _, x := range in[i:min(i+k, len(in))] {
			if x.Divergent > best.Divergent {
				best.Divergent = x.Divergent
			}
		}
		out = append(out, best)
	}
	if last := in[len(in)-1]; out[len(out)-1].TMillis != last.TMillis {
		out = append(out, last)
	}
	return out
}

// JSON is the report, indented, with a final newline.
func (r *Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic(err) // only plain types inside
	}
	return append(b, '\n')
}
