package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	shortDuration  = 40 * time.Second
	convergeWithin = 60 * time.Second // the stated bound: every node identical this long after the heal
	workersPerNode = 2
	ratePerNode    = 40.0 // requests a second at each node
)

// run is one chaos run: its nodes, workload and findings.
type run struct {
	t      *testing.T
	nw     *network
	proxy  *proxy // nil unless delay is a fault kind of the run
	nodes  []*node
	wl     *workload
	faults map[string]int
	conv   []time.Duration
	// contentsConv is, with -chaos.trace-converge, when each round's typed
	// keys' contents became equal everywhere (conv: their Merkle roots).
	contentsConv []time.Duration
	delays       map[string]fault // active delay faults, by name
	cuts         []cut            // symmetric partitions, as they were in force
	open         map[string]int   // the partition of each fault name in force: its place in cuts
	// problems are findings outside the history: crashes, refused
	// restarts, unclean stops, meshes that never converged.
	mu       sync.Mutex
	problems []string
}

func (r *run) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	r.problems = append(r.problems, msg)
	r.t.Log("PROBLEM: " + msg)
}

// summary is what a run reports, and what -chaos.report writes.
type summary struct {
	Seed           int64
	Nodes          int
	Duration       string
	Rounds         int
	Faults         map[string]int
	Requests       map[string]int
	Acknowledged   int
	Lost           int
	Resurrected    int
	Diverged       int
	Phantoms       int
	SkewAdopted    int
	ProxiedConns   int64 `json:",omitempty"`
	ConvergeMedian string
	ConvergeP90    string
	ConvergeMax    string
	// ContentsConverge is the typed keys' contents' median / p90 / max
	// (-chaos.trace-converge).
	ContentsConverge  string `json:",omitempty"`
	CounterMismatches int
	ClockBackwards    int
	Misordered        int
	// AcknowledgedByType counts acknowledged writes by command.
	AcknowledgedByType map[string]int
	Problems           []string
	Replay             string
}

func replayCommand(seed int64, nodes int, duration time.Duration, faults string) string {
	cmd := "go test ./e2e/chaos -run '^TestChaos$' -count=1 -v -timeout 0"
	if raceEnabled {
		cmd += " -race"
	}
	cmd += fmt.Sprintf(" -chaos.seed %d -chaos.nodes %d -chaos.duration %v", seed, nodes, duration)
	if faults != "" {
		cmd += " -chaos.faults " + faults
	}
	if *flagRoundMin != 8*time.Second || *flagRoundMax != 16*time.Second {
		cmd += fmt.Sprintf(" -chaos.round-min %v -chaos.round-max %v", *flagRoundMin, *flagRoundMax)
	}
	if *flagBinary != "" {
		cmd += " -chaos.binary " + *flagBinary
	}
	if *flagMutant != "" {
		cmd += " -chaos.mutant " + *flagMutant
	}
	return cmd
}

// TestChaos runs the mesh under a seeded schedule of faults and checks it.
// By default it is CI's short run; flags make it the long run.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos takes a minute; skipped in -short")
	}
	requireNetTools(t)
	kinds, err := parseFaults(*flagFaults)
	if err != nil {
		t.Fatal(err)
	}
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano()%1_000_000_000 + 1
	}
	duration := *flagDuration
	if duration == 0 {
		duration = shortDuration
	}
	nodes := *flagNodes
	if nodes < 2 {
		t.Fatal("-chaos.nodes: at least 2")
	}
	replay := replayCommand(seed, nodes, duration, *flagFaults)
	t.Logf("seed %d, %d nodes, %v of faults from %s", seed, nodes, duration, strings.Join(kinds, ","))

	bin := redmeshBinary(t)
	nw := newNetwork(t, nodes)
	runDir, err := os.MkdirTemp("", nw.tag+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED: seed %d. Replay the schedule with:\n  %s\nnode logs kept in %s", seed, replay, runDir)
			return
		}
		if *flagKeep {
			t.Logf("node logs kept in %s", runDir)
			return
		}
		os.RemoveAll(runDir)
	})
	psk := filepath.Join(runDir, "mesh.key")
	if out, err := exec.Command(bin, "keygen", psk).CombinedOutput(); err != nil {
		t.Fatalf("redmesh keygen: %v\n%s", err, out)
	}

	r := &run{t: t, nw: nw, faults: map[string]int{}, delays: map[string]fault{}, open: map[string]int{}}
	if slices.Contains(kinds, faultDelay) {
		if r.proxy, err = newProxy(nw, seed); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.proxy.close)
	}
	for i := range nodes {
		r.nodes = append(r.nodes, newNode(t, i, nw, runDir))
	}
	for _, n := range r.nodes {
		n.base = []string{"--data", n.dir, "--listen", respAddr, "--psk-file", psk,
			"--p2p-listen", fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", meshPort), "--mdns=false",
			"--fsync", "always", "--max-clock-skew", maxSkew.String(), "--clock-offset-settable"}
		for _, p := range r.nodes {
			if p != n {
				n.base = append(n.base, "--peer", p.maddr())
			}
		}
	}
	t.Cleanup(func() {
		for _, n := range r.nodes {
			n.kill()
		}
	})
	for _, n := range r.nodes {
		if err := n.start(0); err != nil {
			t.Fatal(err)
		}
	}
	r.waitConnected()

	r.wl = startWorkload(r.nodes, workersPerNode, ratePerNode, seed)
	sched := newSchedule(seed, nodes, kinds, *flagRoundMin, *flagRoundMax)
	end := time.Now().Add(duration)
	rounds := 0
	for ; time.Now().Before(end); rounds++ {
		rd := sched.next()
		for _, f := range rd.Faults {
			t.Logf("round %d (%v): %v", rounds, rd.Length, f)
			r.faults[f.Kind]++
		}
		healed := r.play(rd)
		r.wl.gate.close()
		r.afterHeal()
		if d, ok := r.awaitConvergence(healed); ok {
			t.Logf("round %d: converged %v after the heal", rounds, d.Round(time.Millisecond))
			r.conv = append(r.conv, d)
		}
		if time.Now().Before(end) {
			r.wl.gate.open()
		}
	}
	history := r.wl.stop()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var states []nodeState
	for _, n := range r.nodes {
		st, err := dump(ctx, n.admin)
		if err != nil {
			t.Fatalf("read node %d: %v", n.i, err)
		}
		states = append(states, st)
	}
	clocks := clockHistory{MaxSkew: maxSkew}
	for _, n := range r.nodes {
		clocks.Spans = append(clocks.Spans, n.clockSpans())
	}
	v := check(history, states, clocks, r.cuts)
	s := summary{
		Seed: seed, Nodes: nodes, Duration: duration.String(), Rounds: rounds,
		Faults: r.faults, Requests: summarize(history),
		Acknowledged: v.Acknowledged, Lost: v.Lost, Resurrected: v.Resurrected,
		Diverged: v.Diverged, Phantoms: v.Phantoms, SkewAdopted: v.SkewAdopted,
		CounterMismatches: v.CounterMismatches, ClockBackwards: v.ClockBackwards, Misordered: v.Misordered, AcknowledgedByType: ackedByType(history),
		Problems: r.problems, Replay: replay,
	}
	if r.proxy != nil {
		s.ProxiedConns = r.proxy.Conns.Load()
	}
	if len(r.conv) > 0 {
		sorted := slices.Sorted(slices.Values(r.conv))
		s.ConvergeMedian = sorted[len(sorted)/2].Round(time.Millisecond).String()
		s.ConvergeP90 = sorted[len(sorted)*9/10].Round(time.Millisecond).String()
		s.ConvergeMax = sorted[len(sorted)-1].Round(time.Millisecond).String()
	}
	if len(r.contentsConv) > 0 {
		sorted := slices.Sorted(slices.Values(r.contentsConv))
		s.ContentsConverge = fmt.Sprintf("%v / %v / %v", sorted[len(sorted)/2].Round(time.Millisecond),
			sorted[len(sorted)*9/10].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
	}
	out, _ := json.MarshalIndent(s, "", "  ")
	t.Logf("summary:\n%s", out)
	t.Logf("refusals by node:\n%s", refusals(history))
	if *flagReport != "" {
		if err := os.WriteFile(*flagReport, out, 0o644); err != nil {
			t.Error(err)
		}
	}
	if !v.ok() {
		t.Errorf("checker: %s", v.describe())
	}
	if len(r.problems) > 0 {
		t.Errorf("%d problems:\n  %s", len(r.problems), strings.Join(r.problems, "\n  "))
	}
}

// waitConnected waits until every node has every other as a peer.
func (r *run) waitConnected() {
	want := strconv.Itoa(len(r.nodes) - 1)
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range r.nodes {
		for {
			info, err := n.info()
			if err == nil && info["mesh_connected_peers"] == want {
				break
			}
			if time.Now().After(deadline) {
				r.t.Fatalf("node %d did not connect to %s peers within 30s (%v, %v)\n%s", n.i, want, info["mesh_connected_peers"], err, n.logTail(20))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// info reads INFO replication.
func (n *node) info() (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s, err := n.admin.Info(ctx, "replication").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for l := range strings.SplitSeq(s, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

// play injects a round's faults at their times and heals each at its end;
// it returns when the last heal was done.
func (r *run) play(rd round) time.Time {
	type event struct {
		at   time.Duration
		i    int // the fault's place in the round: names its rules
		f    fault
		heal bool
	}
	var events []event
	for i, f := range rd.Faults {
		events = append(events, event{f.Start, i, f, false}, event{f.End, i, f, true})
		if f.Kind == faultClockJump {
			second := f
			second.Offset = f.Offset2
			events = append(events, event{f.Start + (f.End-f.Start)/2, i, second, false})
		}
	}
	slices.SortStableFunc(events, func(a, b event) int { return int(a.at - b.at) })
	start := time.Now()
	for _, ev := range events {
		// Waiting is the schedule itself here, not a guess at a condition.
		time.Sleep(time.Until(start.Add(ev.at)))
		name := fmt.Sprintf("f%d", ev.i)
		if i, ok := r.open[name]; ok && ev.heal {
			r.cuts[i].To = time.Now() // before the heal: nothing crossed until then
			delete(r.open, name)
		}
		if err := r.apply(name, ev.f, ev.heal); err != nil {
			what := "inject"
			if ev.heal {
				what = "heal"
			}
			r.t.Fatalf("%s %v: %v", what, ev.f, err)
		}
		if ev.f.Kind == faultPartition && !ev.heal {
			r.open[name] = len(r.cuts) // from now: the rules are in force
			r.cuts = append(r.cuts, cut{A: ev.f.A, B: ev.f.B, From: time.Now(), To: time.Now().Add(time.Hour)})
		}
	}
	return time.Now()
}

// apply injects fault f, or heals it.
func (r *run) apply(name string, f fault, heal bool) error {
	switch f.Kind {
	case faultPartition, faultOneWay, faultLoss:
		var rules []string
		if !heal {
			rules = r.rules(f)
		}
		return r.nw.setRules(name, rules)
	case faultDelay:
		r.setDelays(name, f, heal)
		return nil
	}
	n := r.nodes[f.Node]
	if !n.running() && !(f.Kind == faultPause && heal) {
		if crashed, err := n.crashed(); crashed {
			r.problem("node %d exited on its own (%v) before %v could act on it:\n%s", n.i, err, f, n.crashReport())
			return n.start(n.offset)
		}
	}
	switch f.Kind {
	case faultKill:
		if heal {
			return n.start(n.offset)
		}
		n.kill()
	case faultPause:
		if heal {
			return n.signal(syscall.SIGCONT)
		}
		return n.signal(syscall.SIGSTOP)
	case faultSkew, faultSkewBeyond:
		offset := f.Offset
		if heal {
			offset = 0
		}
		if err := n.stop(); err != nil {
			r.problem("%v", err)
		}
		return n.start(offset)
	case faultDiskFull:
		if heal {
			return n.freeDisk()
		}
		return n.fillDisk()
	case faultClockJump:
		offset := f.Offset
		if heal {
			offset = 0
		}
		return n.jumpClock(offset)
	}
	return nil
}

// setDelays records delay fault name as active (or healed) and gives every
// link the largest delay and jitter of the active faults on it.
func (r *run) setDelays(name string, f fault, heal bool) {
	if heal {
		delete(r.delays, name)
	} else {
		r.delays[name] = f
	}
	for a := range r.nodes {
		for b := a + 1; b < len(r.nodes); b++ {
			var d, j time.Duration
			for _, f := range r.delays {
				if slices.Contains(f.Links, [2]int{a, b}) {
					d, j = max(d, f.Delay), max(j, f.Jitter)
				}
			}
			r.proxy.setDelay(a, b, d, j)
		}
	}
}

// rules are the nftables rules of a network fault.
func (r *run) rules(f fault) []string {
	var rules []string
	switch f.Kind {
	case faultPartition, faultOneWay:
		for _, a := range f.A {
			for _, b := range f.B {
				rules = append(rules, r.nw.dropRule(a, b, 100))
				if f.Kind == faultPartition {
					rules = append(rules, r.nw.dropRule(b, a, 100))
				}
			}
		}
	case faultLoss:
		for _, l := range f.Links {
			rules = append(rules, r.nw.dropRule(l[0], l[1], f.Pct), r.nw.dropRule(l[1], l[0], f.Pct))
		}
	}
	return rules
}

// afterHeal makes sure every node runs, restarting (and reporting) any that
// died on its own.
func (r *run) afterHeal() {
	for _, n := range r.nodes {
		if crashed, err := n.crashed(); crashed {
			r.problem("node %d exited on its own (%v):\n%s", n.i, err, n.crashReport())
			if err := n.start(n.offset); err != nil {
				r.t.Fatalf("restart node %d after its crash: %v", n.i, err)
			}
		}
	}
}

// awaitConvergence waits until every node has the same Merkle root, and
// returns how long after healed that was. The workload has stopped by then
// (waiting for its requests in flight is part of the time).
func (r *run) awaitConvergence(healed time.Time) (time.Duration, bool) {
	var roots, peers []string
	var tracer *convergeTracer
	if *flagTraceConverge {
		tracer = &convergeTracer{r: r}
	}
	for time.Since(healed) < convergeWithin {
		roots, peers = roots[:0], peers[:0]
		for _, n := range r.nodes {
			info, err := n.info()
			if err != nil {
				roots = append(roots, "error: "+err.Error())
				continue
			}
			roots = append(roots, info["mesh_merkle_root"])
			peers = append(peers, info["mesh_connected_peers"])
		}
		if len(slices.Compact(slices.Clone(roots))) == 1 {
			d := time.Since(healed)
			if tracer != nil {
				c := tracer.contents(d)
				r.contentsConv = append(r.contentsConv, c)
				r.t.Logf("typed contents equal %v after the heal, Merkle roots %v", c.Round(time.Millisecond), d.Round(time.Millisecond))
			}
			return d, true
		}
		if tracer != nil {
			tracer.sample(time.Since(healed), roots)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.problem("the nodes did not converge within %v of the heal: Merkle roots %v, connected peers %v; keys whose versions differ:\n%s",
		convergeWithin, roots, peers, r.versionDiff(20))
	return 0, false
}

// versionDiff lists up to limit keys the workload wrote (so far: the
// workload is stopped) whose MESH VERSION differs between nodes, deleted
// keys' tombstones included, with each node's answer.
func (r *run) versionDiff(limit int) string {
	keys := map[string]bool{}
	for _, w := range r.wl.workers {
		for _, o := range w.history {
			keys[o.Key] = true
		}
	}
	var b strings.Builder
	found := 0
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		var answers []string
		for _, n := range r.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			v, err := n.admin.Do(ctx, "MESH", "VERSION", k).Result()
			cancel()
			if err != nil {
				answers = append(answers, "error: "+err.Error())
			} else {
				answers = append(answers, fmt.Sprint(v))
			}
		}
		if len(slices.Compact(slices.Clone(answers))) > 1 {
			fmt.Fprintf(&b, "  %s: %s\n", k, strings.Join(answers, " | "))
			if found++; found == limit {
				break
			}
		}
	}
	if found == 0 {
		return "  none: they differ in what MESH VERSION does not show (typed elements, traces, counts)\n"
	}
	return b.String()
}

// refusals counts the error replies each node gave, by text.
func refusals(h []op) string {
	byNode := map[int]map[string]int{}
	for _, o := range h {
		if o.Outcome != failed {
			continue
		}
		if byNode[o.Node] == nil {
			byNode[o.Node] = map[string]int{}
		}
		byNode[o.Node][o.Err]++
	}
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(byNode)) {
		for _, e := range slices.Sorted(maps.Keys(byNode[n])) {
			fmt.Fprintf(&b, "  node %d: %d× %s\n", n, byNode[n][e], e)
		}
	}
	return b.String()
}
