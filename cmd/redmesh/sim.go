package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/sim"
)

func simCmd() *cobra.Command {
	var (
		cfg        sim.Config
		nw         = sim.DefaultNetwork
		scenario   string
		fsync      string
		shape      string
		reportPath string
		plotPath   string
		printOnly  bool
		quiet      bool
		cpuProfile string
		memProfile string
		// memProfileAt: when (virtual time) the heap profile is taken.
		memProfileAt time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate a mesh of many nodes in virtual time and check that it converges",
		Long: `Simulate a mesh in one process, in virtual time, with one seeded random source:
the nodes run redmesh's reconciliation session, merge rule, clock and peer
policies over a modelled network (latency, bandwidth, loss, partitions,
crashes, churn, clock skew). After the run it checks that the live nodes
converged, that no acknowledged write was lost and that no deleted key came
back, and reports time, rounds and bytes. The same seed gives the same report.

--scenario is a built-in name (` + strings.Join(sim.Names(), ", ") + `)
or a YAML/JSON scenario file; --print-scenario shows a built-in as YAML.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			if fsync != "" {
				cfg.Fsync = sim.Fsync(fsync)
			}
			if shape != "auto" {
				s, err := parseShape(shape)
				if err != nil {
					return err
				}
				cfg.Shape = s
			}
			if networkFlagsChanged(fl) {
				cfg.Network = nw
			}
			sc, err := loadScenario(scenario, cfg)
			if err != nil {
				return err
			}
			if printOnly {
				b, err := yaml.Marshal(sc)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			cfg.Command = replayCommand(fl)
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			var bar *progressbar.ProgressBar
			if !quiet && term.IsTerminal(int(os.Stderr.Fd())) {
				bar = progressbar.NewOptions64(1000,
					progressbar.OptionSetWriter(os.Stderr),
					progressbar.OptionSetDescription("simulating "+sc.Name),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionShowElapsedTimeOnFinish(),
					progressbar.OptionClearOnFinish(),
					progressbar.OptionSetWidth(30))
				cfg.Progress = func(now, horizon time.Duration) {
					_ = bar.Set64(int64(1000 * float64(now) / float64(max(horizon, 1))))
				}
			}
			var heapErr error
			if memProfile != "" {
				// The heap at a moment of the run (its stores, logs and
				// sessions), not at its end, when the nodes are gone.
				taken, progress := false, cfg.Progress
				cfg.Progress = func(now, horizon time.Duration) {
					if progress != nil {
						progress(now, horizon)
					}
					if !taken && now >= memProfileAt {
						taken = true
						heapErr = writeHeapProfile(memProfile)
					}
				}
			}
			rep, err := sim.Run(cfg, sc)
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return err
			}
			if heapErr != nil {
				return heapErr
			}
			if reportPath != "" {
				if err := writeOut(reportPath, cmd.OutOrStdout(), rep.JSON()); err != nil {
					return err
				}
			}
			if plotPath != "" {
				if err := writeOut(plotPath, cmd.OutOrStdout(), rep.SVG()); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if reportPath == "-" || plotPath == "-" {
				out = cmd.ErrOrStderr()
			}
			printSummary(out, rep)
			if !rep.Pass {
				fmt.Fprintf(cmd.ErrOrStderr(), "FAIL (seed %d). Replay with:\n  %s\n", rep.Seed, rep.Command)
				return errors.New("sim: checks failed")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", "partition-heal", "built-in scenario name or scenario file (YAML or JSON)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the run's one random source")
	f.IntVar(&cfg.Nodes, "nodes", 0, "nodes at the start (default: the scenario's, else 100)")
	f.IntVar(&cfg.Keys, "keys", 0, "keys preloaded on every node (default: the scenario's, else 1000 for built-ins)")
	f.IntVar(&cfg.ValueSize, "value-size", 64, "bytes per written value")
	f.IntVar(&cfg.Degree, "degree", 16, "overlay links per node (full mesh when ≥ nodes-1)")
	f.StringVar(&fsync, "fsync", "", "durability: always, everysec or no (default: the scenario's, else everysec)")
	f.StringVar(&shape, "shape", "auto", `Merkle tree shape FANOUTxDEPTH, e.g. 16x4 (65,536 buckets); "auto" picks 16-way with about 16 keys or fewer per bucket`)
	f.DurationVar(&cfg.SyncInterval, "sync-interval", time.Second, "anti-entropy period per node")
	f.DurationVar(&cfg.SessionTimeout, "session-timeout", 10*time.Second, "abandon a session that stalls this long")
	f.IntVar(&cfg.PushBatch, "push-batch", 64, "records per eager-push batch, at most")
	f.IntVar(&cfg.RelayFanout, "relay-fanout", 0, "peers a push that was news is relayed to, on a partial overlay (0: the node's default)")
	f.IntVar(&cfg.LogRetain, "log-retain", 4096, "log entries each node retains for catch-up")
	f.IntVar(&cfg.CatchUpBatch, "catch-up-batch", 1024, "log entries per catch-up reply")
	f.DurationVar(&cfg.OSFlush, "os-flush", 30*time.Second, "OS flush period under --fsync no")
	f.DurationVar(&cfg.MaxSkew, "max-clock-skew", time.Minute, "refuse remote timestamps this far ahead")
	f.DurationVar(&cfg.MaxTime, "max-time", 10*time.Minute, "give up this long (virtual) after the last scenario event")
	f.BoolVar(&cfg.NoPush, "no-push", false, "switch eager push off")
	f.BoolVar(&cfg.NoCatchUp, "no-catch-up", false, "switch log catch-up off (anti-entropy only)")
	f.BoolVar(&cfg.NoCollect, "no-collect", false, "switch garbage collection off (every tombstone kept)")
	f.DurationVar(&cfg.AckInterval, "ack-interval", 250*time.Millisecond, "how often a node samples its log, acknowledges and collects (a node's: 250ms; spaced by the mesh's size from 2,000 members)")
	f.DurationVar(&cfg.ForgetAfter, "forget-after", 0, "forget members silent this long, as serve --forget-after (0: the scenario's, default off)")
	f.BoolVar(&cfg.AckUnsynced, "ack-unsynced", false, "acknowledge what is applied before it is synced (not what the node does)")
	f.BoolVar(&cfg.LogAsCurrent, "log-as-current", false, "catch-up serves the key's current record, not the log entry as written (not what the node does)")
	f.BoolVar(&cfg.NoFreshCatchUp, "no-fresh-catch-up", false, "merge catch-up records as they are, without record.Fresh (not what the node does)")
	f.DurationVar(&nw.Latency, "latency", nw.Latency, "one-way base latency")
	f.DurationVar(&nw.Jitter, "jitter", nw.Jitter, "mean of the log-normal latency tail")
	f.Int64Var(&nw.Bandwidth, "bandwidth", nw.Bandwidth, "uplink bytes per second per node (0: unlimited)")
	f.Float64Var(&nw.Loss, "loss", nw.Loss, "packet loss probability")
	f.DurationVar(&nw.Detect, "detect", nw.Detect, "time to notice a dead link")
	f.DurationVar(&nw.Reconnect, "reconnect", nw.Reconnect, "longest random delay before a link comes back")
	f.StringVar(&reportPath, "report", "", `write the JSON report to this file ("-": stdout)`)
	f.StringVar(&plotPath, "plot", "", `write an SVG plot of divergent keys and bytes over time to this file`)
	f.BoolVar(&printOnly, "print-scenario", false, "print the scenario as YAML and exit")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile to this file, at --memprofile-at")
	f.DurationVar(&memProfileAt, "memprofile-at", 30*time.Second, "the virtual time the heap profile is taken at")
	return cmd
}

var networkFlags = []string{"latency", "jitter", "bandwidth", "loss", "detect", "reconnect"}

func networkFlagsChanged(fl *pflag.FlagSet) bool {
	for _, n := range networkFlags {
		if fl.Changed(n) {
			return true
		}
	}
	return false
}

// loadScenario returns the built-in scenario name, or reads a file.
func loadScenario(name string, cfg sim.Config) (*sim.Scenario, error) {
	for _, n := range sim.Names() {
		if n == name {
			return sim.Builtin(name, cfg)
		}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("--scenario %q is neither a built-in (%s) nor a readable file: %w", name, strings.Join(sim.Names(), ", "), err)
	}
	sc, err := sim.ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if sc.Name == "" {
		sc.Name = name
	}
	return sc, nil
}

func parseShape(s string) (merkle.Shape, error) {
	a, b, ok := strings.Cut(s, "x")
	f, err1 := strconv.Atoi(a)
	d, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return merkle.Shape{}, fmt.Errorf("--shape %q: want FANOUTxDEPTH, e.g. 16x4, or auto", s)
	}
	sh := merkle.Shape{FanOut: f, Depth: d, Hash: merkle.HashXXH64}
	return sh, sh.Validate()
}

// replayCommand is the command line that reruns this simulation: the
// scenario, the seed and every flag that changes the run.
func replayCommand(fl *pflag.FlagSet) string {
	skip := map[string]bool{"report": true, "plot": true, "print-scenario": true, "quiet": true, "cpuprofile": true, "memprofile": true, "memprofile-at": true, "scenario": true, "seed": true}
	parts := []string{"redmesh sim", "--scenario " + shellQuote(fl.Lookup("scenario").Value.String()), "--seed " + fl.Lookup("seed").Value.String()}
	fl.Visit(func(f *pflag.Flag) {
		if !skip[f.Name] {
			parts = append(parts, "--"+f.Name+" "+shellQuote(f.Value.String()))
		}
	})
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=+,%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func writeOut(path string, stdout io.Writer, b []byte) error {
	if path == "-" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func printSummary(w io.Writer, r *sim.Report) {
	c := r.Convergence
	fmt.Fprintf(w, "scenario %s: %d nodes, %d keys, fsync %s, shape %d buckets, seed %d\n",
		r.Scenario, r.Config.Nodes, r.Config.Keys, r.Config.Fsync, r.Config.Leaves, r.Seed)
	if c.Converged {
		fmt.Fprintf(w, "converged %.1f s after the last event (t=%.1f s): %.1f sync rounds; push-pull gossip bound %.1f rounds for %d nodes\n",
			float64(c.AfterMs)/1000, float64(c.TimelineEndMs)/1000, c.AfterRounds, c.GossipBound, c.LiveNodes)
	} else {
		fmt.Fprintf(w, "did NOT converge by t=%.1f s\n", float64(c.EndMs)/1000)
	}
	s, cu := r.Sessions, r.CatchUp
	fmt.Fprintf(w, "sessions: %d started, %d completed (%d found nothing), %d timed out; %d keys pulled, %d pushed\n",
		s.Started, s.Completed, s.Equal, s.TimedOut, s.KeysPulled, s.KeysPushed)
	fmt.Fprintf(w, "catch-ups: %d started, %d by log (%d records), %d Merkle fallbacks (%d without a cursor)\n",
		cu.Started, cu.ByLog, cu.LogRecords, cu.MerkleFallbacks, cu.WithoutCursor)
	b := r.Bytes
	fmt.Fprintf(w, "bytes sent: %s metadata + %s payload; per node %s + %s on average, %s + %s at most\n",
		humanize.Bytes(uint64(b.Meta)), humanize.Bytes(uint64(b.Payload)),
		humanize.Bytes(uint64(b.PerNodeMeta.Mean)), humanize.Bytes(uint64(b.PerNodePayload.Mean)),
		humanize.Bytes(uint64(b.PerNodeMeta.Max)), humanize.Bytes(uint64(b.PerNodePayload.Max)))
	k := r.Check
	fmt.Fprintf(w, "check: %d acknowledged writes, %d lost, %d resurrections, %d regressions; %d at risk in crashes (%d gone, allowed by fsync %s)\n",
		k.Acknowledged, k.Lost, k.Resurrections, k.Regressions, k.AtRisk, k.AtRiskLost, r.Config.Fsync)
	if r.Config.Collect {
		g := r.GC
		fmt.Fprintf(w, "collection: %d tombstones (%d expired keys) and %d traces collected, %d on arrival; %d forgotten, %d returned, %d records set aside (%d of its own by a returning node, %d writes lost so, allowed); stable lag p50 %v, max %v; %s of acknowledgements\n",
			g.TombstonesCollected, g.ExpiredCollected, g.TracesCollected, g.CollectedOnArrival, g.Forgotten, g.Returned,
			g.SetAside, g.OwnSetAside, k.SetAsideLost, time.Duration(g.StableLagP50Ms)*time.Millisecond,
			time.Duration(g.StableLagMaxMs)*time.Millisecond, humanize.Bytes(uint64(g.AckBytes)))
	}
	if t := k.Typed; t.Writes > 0 {
		fmt.Fprintf(w, "typed: %d acknowledged writes (%d refused), %d elements added, %d there at the end, %d counters (%d increments on a count a crash took back, %d field counters hidden); %d adds lost, %d not removed, %d unknown, %d counters wrong\n",
			t.Writes, t.Rejected, t.Adds, t.Present, t.Counters, t.StaleCounts, t.HiddenCounters, t.LostAdds, t.NotRemoved, t.Unknown, t.WrongCounters)
	}
	if r.Pass {
		fmt.Fprintln(w, "PASS")
		return
	}
	for _, f := range r.Failures {
		fmt.Fprintln(w, "FAIL:", f)
	}
}

// writeHeapProfile writes the heap profile, after a collection, to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return nil
}
