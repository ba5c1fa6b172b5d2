package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// Epoch is the true wall-clock time at virtual time zero. It is fixed so
// that a run's timestamps, and so its report, depend only on the seed.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Sim is one run: the nodes, the network, the event queue and the one
// random source. Build it with New and run it with Run.
type Sim struct {
	cfg    Config
	sc     *Scenario
	rng    *rand.Rand
	q      queue
	now    int64
	epoch  time.Time
	keys   *keyTable
	values map[string][]byte
	// logged: the one copy of each plain record the nodes' logs hold.
	logged map[loggedKey]*record.Record
	// lastLogged is, by key number, the copy of the key's plain record
	// logged last (logRecord).
	lastLogged []*record.Record
	nodes      []*node
	byID       map[mesh.PeerID]int32

	tr  tracker
	ck  checker
	st  stats
	gst gcStats
	// lastWrite is the newest timestamp of an acknowledged write: once
	// every live node has collected past it, nothing is left to collect.
	lastWrite hlc.Timestamp
	targets   []mesh.PeerID

	series   []Sample
	timeline []Mark
	writeSeq int64
	// listValues numbers the values of list pushes (typedlist.go).
	listValues int64

	timelineEnd int64
	hardEnd     int64
	converged   bool
	convergedAt int64
	done        bool
	err         error
}

// stats are the run's counters.
type stats struct {
	events                                    int64
	rounds, roundsBusy, roundsAlone           int64
	sessions, sessionsDone, sessionsEqual     int64
	sessionTimeouts, sessionErrors            int64
	sessionsRefused                           int64
	keysPulled, keysPushed                    int64
	catchUps, catchUpsNoCursor, catchUpsByLog int64
	logEntries, fallbacks, fallbackSessions   int64
	fallbacksDone                             int64
	pushBatches, pushRecords                  int64
	pushRelayed, pushHeld                     int64
	// propagation: from a push's send at its origin to its merge at each
	// node it was news to.
	propagation                       msHist
	messages, dropped                 int64
	retransmits, connects             int64
	decodeErrors                      int64
	crashes, rolledBack, left, joined int64
	totalMeta, totalPayload           int64
	peakDivergent                     int
}

func (s *Sim) at(t int64, fn func()) { s.q.push(event{at: t, fn: fn}) }

// Run runs scenario sc under cfg and returns its report. Fields of cfg left
// zero take the scenario's values, then the defaults. The error is for a run
// that could not be set up; a run that fails its checks returns a report
// with Pass false.
func Run(cfg Config, sc *Scenario) (*Report, error) {
	s, err := New(cfg, sc)
	if err != nil {
		return nil, err
	}
	return s.Run()
}

// New sets up a run without starting it.
func New(cfg Config, sc *Scenario) (*Sim, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = sc.Nodes
	}
	if cfg.Keys == 0 {
		cfg.Keys = sc.Keys
	}
	if cfg.Fsync == "" {
		cfg.Fsync = sc.Fsync
	}
	if cfg.ForgetAfter == 0 {
		cfg.ForgetAfter = time.Duration(sc.ForgetAfter)
	}
	if sc.Loss != nil && cfg.Network == (Network{}) {
		cfg.Network = DefaultNetwork
		cfg.Network.Loss = *sc.Loss
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:    cfg,
		sc:     sc,
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		epoch:  Epoch,
		keys:   newKeyTable(cfg.Shape),
		values: make(map[string][]byte),
		logged: make(map[loggedKey]*record.Record),
		byID:   make(map[mesh.PeerID]int32),
	}
	s.ck.lastInc = make(map[countKey]record.Version)
	if err := s.checkNodeSets(); err != nil {
		return nil, err
	}
	s.build()
	s.schedule()
	return s, nil
}

// checkNodeSets resolves every node set of the timeline against the nodes
// that will exist at its time, so a bad scenario fails before it runs.
func (s *Sim) checkNodeSets() error {
	n := s.cfg.Nodes
	total := n
	for i, e := range s.sc.Events {
		var sets []NodeSet
		if e.Write != nil {
			sets = append(sets, e.Write.Nodes)
		}
		sets = append(sets, e.Partition...)
		for _, ns := range []NodeSet{e.Crash, e.Restart, e.Leave} {
			if ns != "" {
				sets = append(sets, ns)
			}
		}
		if e.Skew != nil {
			sets = append(sets, e.Skew.Nodes)
		}
		for _, ns := range sets {
			if _, err := ns.resolve(n, total); err != nil {
				return fmt.Errorf("sim: scenario event %d: %w", i, err)
			}
		}
		if e.Typed != nil {
			sets = append(sets, e.Typed.Nodes)
		}
		if e.Set != nil && e.Set.Node >= total || e.Del != nil && e.Del.Node >= total || e.Command != nil && e.Command.Node >= total {
			return fmt.Errorf("sim: scenario event %d: no such node", i)
		}
		total += e.Join
		if total > maxNodes {
			return fmt.Errorf("sim: scenario: more than %d nodes", maxNodes)
		}
	}
	return nil
}

func keyName(i int) []byte { return fmt.Appendf(nil, "key:%08d", i) }

// build creates the starting mesh: nodes on a random overlay, all linked,
// all holding the same preloaded keys, with cursors at each other's log
// heads: a mesh in a steady state.
func (s *Sim) build() {
	c := &s.cfg
	for range c.Nodes {
		s.newNode()
	}
	// Every node is a member of every other's mesh (gcStart), told so by
	// one sorted list of them all that every node shares.
	members := make([]mesh.PeerID, len(s.nodes))
	for i, x := range s.nodes {
		members[i] = x.pid
	}
	slices.Sort(members)
	for _, x := range s.nodes {
		x.r.Members(members)
	}
	n := len(s.nodes)
	if c.Degree >= n-1 {
		for _, a := range s.nodes {
			for _, b := range s.nodes {
				if a != b {
					a.r.AddPeer(b.pid)
				}
			}
		}
	} else {
		for _, a := range s.nodes {
			for k, tries := 0, 0; k < c.Degree/2 && tries < 4*c.Degree; tries++ {
				b := s.nodes[s.rng.IntN(n)]
				if b == a || a.r.Table().Get(b.pid) != nil {
					continue
				}
				a.r.AddPeer(b.pid)
				b.r.AddPeer(a.pid)
				k++
			}
		}
	}
	// Preload.
	ref := s.nodes[0]
	pre := record.Version{TS: hlc.FromTime(s.epoch.Add(-time.Hour)), Node: ref.id}
	for i := range c.Keys {
		k := keyName(i)
		id := s.keys.id(k)
		rec := record.Record{Value: record.Value{Version: pre, Data: s.intern(s.value(k, -1))}, Expiry: record.Expiry{Version: pre}}
		ref.st.set(id, rec)
		s.ck.writes = append(s.ck.writes, writeRec{key: id, node: -1, synced: true, ver: pre})
	}
	s.tr.grow(s.keys.len())
	base := make([]record.Record, ref.st.size)
	for id, r := range ref.st.all() {
		base[id] = r
	}
	for id := range c.Keys {
		s.tr.best[id], s.tr.cnt[id] = base[id], int32(n)
	}
	s.tr.live = n
	root := ref.st.tree.Root()
	for _, x := range s.nodes {
		if x != ref && c.Keys > 0 {
			x.st.share(ref.st, base)
		}
		for _, p := range x.r.Table().Peers() {
			// The mesh has run before: linked, its peers told, every log
			// read to its head.
			x.r.AssumeLinked(p.ID, mesh.Cursor{Epoch: 1, Next: 1}, root)
		}
		s.sync(x)
		s.startTicks(x)
	}
}

// value is the data of write seq to key (seq -1: the preload).
func (s *Sim) value(key []byte, seq int64) []byte {
	v := fmt.Appendf(nil, "%s#%d:", key, seq)
	for len(v) < s.cfg.ValueSize {
		v = append(v, '.')
	}
	return v[:max(s.cfg.ValueSize, 1)]
}

// schedule puts the scenario's events on the queue.
func (s *Sim) schedule() {
	n := s.cfg.Nodes
	for _, e := range s.sc.Events {
		e := e
		at := int64(e.At)
		s.timelineEnd = max(s.timelineEnd, at)
		switch {
		case e.Write != nil:
			w := e.Write
			keys := w.Keys
			if keys == 0 {
				keys = s.cfg.Keys
			}
			if keys == 0 {
				keys = 1000
			}
			over := int64(w.Over)
			s.timelineEnd = max(s.timelineEnd, at+over)
			s.mark(at, fmt.Sprintf("%d writes over %v", w.Count, time.Duration(w.Over)))
			for range w.Count {
				t := at
				if over > 0 {
					t += s.rng.Int64N(over + 1)
				}
				// What the write is, is drawn now: the workload depends on
				// the seed alone, not on the draws replication makes before
				// it (two policies compared on one seed see the same
				// writes). Only the node set is resolved when it happens
				// (nodes may have joined).
				pick := s.rng.Float64()
				k := keyName(s.rng.IntN(keys))
				tomb := w.Deletes > 0 && s.rng.Float64() < w.Deletes
				var ttl time.Duration
				if !tomb && w.Expires > 0 && s.rng.Float64() < w.Expires {
					ttl = time.Duration(w.TTL)
					if ttl <= 0 {
						ttl = defaultTTL
					}
				}
				s.at(t, func() {
					sp, _ := w.Nodes.resolve(n, len(s.nodes))
					if spansLen(sp) == 0 {
						s.ck.unavailable++
						return
					}
					nd := s.nodes[spansAt(sp, int(pick*float64(spansLen(sp))))]
					s.writeSeq++
					s.write(nd, k, s.value(k, s.writeSeq), tomb, ttl)
				})
			}
		case e.Typed != nil:
			s.scheduleTyped(at, e.Typed)
		case e.Command != nil:
			args := make([][]byte, len(e.Command.Args))
			for i, a := range e.Command.Args {
				args[i] = []byte(a)
			}
			s.at(at, func() { s.command(s.nodes[e.Command.Node], args) })
		case e.Set != nil:
			s.at(at, func() {
				s.write(s.nodes[e.Set.Node], []byte(e.Set.Key), []byte(e.Set.Value), false, time.Duration(e.Set.TTL))
			})
		case e.Del != nil:
			s.at(at, func() { s.write(s.nodes[e.Del.Node], []byte(e.Del.Key), nil, true, 0) })
		case e.Partition != nil:
			s.mark(at, "partition")
			s.at(at, func() {
				groups := make([][]span, len(e.Partition))
				for i, g := range e.Partition {
					groups[i], _ = g.resolve(n, len(s.nodes))
				}
				s.partition(groups)
			})
		case e.Heal:
			s.mark(at, "heal")
			s.at(at, func() { s.partition(nil) })
		case e.Crash != "":
			s.mark(at, "crash "+string(e.Crash))
			s.eachNode(at, e.Crash, s.crash)
		case e.Restart != "":
			s.mark(at, "restart "+string(e.Restart))
			s.eachNode(at, e.Restart, s.restart)
		case e.Leave != "":
			s.mark(at, "leave "+string(e.Leave))
			s.eachNode(at, e.Leave, s.leave)
		case e.Join > 0:
			s.mark(at, fmt.Sprintf("join %d", e.Join))
			s.at(at, func() {
				for range e.Join {
					s.join()
				}
			})
		case e.Skew != nil:
			s.at(at, func() {
				sp, _ := e.Skew.Nodes.resolve(n, len(s.nodes))
				for _, r := range sp {
					for i := r.lo; i < r.hi; i++ {
						s.nodes[i].skew, s.nodes[i].drift = time.Duration(e.Skew.Offset), e.Skew.DriftPPM
					}
				}
			})
		}
	}
	s.hardEnd = s.timelineEnd + int64(s.cfg.MaxTime)
	s.at(0, s.sample)
}

func (s *Sim) eachNode(at int64, ns NodeSet, fn func(*node)) {
	s.at(at, func() {
		sp, _ := ns.resolve(s.cfg.Nodes, len(s.nodes))
		for _, r := range sp {
			for i := r.lo; i < r.hi; i++ {
				fn(s.nodes[i])
			}
		}
	})
}

func (s *Sim) mark(at int64, what string) {
	s.timeline = append(s.timeline, Mark{TMillis: at / 1e6, What: what})
}

// sample records the series and decides whether the run has converged.
func (s *Sim) sample() {
	d := s.tr.divergent()
	s.st.peakDivergent = max(s.st.peakDivergent, d)
	s.series = append(s.series, Sample{TMillis: s.now / 1e6, Divergent: d, Meta: s.st.totalMeta, Payload: s.st.totalPayload})
	if s.cfg.Progress != nil {
		s.cfg.Progress(time.Duration(s.now), time.Duration(s.hardEnd))
	}
	if s.now >= s.timelineEnd && d == 0 {
		if !s.converged {
			s.converged, s.convergedAt = true, s.now
		}
		// With collection on, the run goes on (on a full mesh, for up to
		// settleMax) until every live node has collected all it can, so
		// that the checks see the collected state.
		if !s.fullMesh() || s.gcSettled() || s.now >= s.convergedAt+int64(settleMax) {
			s.done = true
			return
		}
	}
	s.at(s.now+int64(s.cfg.Check), s.sample)
}

// settleMax bounds how long a converged run waits for collection.
const settleMax = time.Minute

// fullMesh reports whether every node links to every other, as a real
// mesh does: on a partial overlay no node hears from every member, so the
// stable time never moves and nothing is collected.
func (s *Sim) fullMesh() bool { return s.cfg.Degree >= len(s.nodes)-1 }

// Run runs the simulation to convergence (after the last scenario event) or
// to the time limit, checks it and reports.
func (s *Sim) Run() (*Report, error) {
	for s.q.len() > 0 && !s.done {
		if s.q.peek() > s.hardEnd {
			s.now = s.hardEnd
			break
		}
		e := s.q.pop()
		s.now = e.at
		s.st.events++
		if e.push != nil {
			s.deliverPush(e.push, e.to, e.inc)
		} else {
			e.fn()
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.report(), nil
}
