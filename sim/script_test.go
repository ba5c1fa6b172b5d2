package sim

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestScripts runs the scripts in testdata/scripts. Commands:
//
//	run [seed=N] [nodes=N] [keys=N] [degree=N] [fsync=M] [log-retain=N] [loss=P] [no-push] [no-catch-up]
//	    [no-collect] [forget-after=D] [os-flush=D] [detect=D] [ack-unsynced]
//	    [log-as-current] [no-fresh-catch-up]
//	    <scenario YAML>            runs it and prints the verdict and figures
//	builtin NAME [the same args]   runs a built-in scenario
//	get KEY                        the key's value on the live nodes of the last run
//	show KEY                       the key as a client reads it at each live node (typed keys)
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/scripts", func(t *testing.T, path string) {
		var last *Sim
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "run", "builtin":
				cfg := Config{Seed: 1}
				var fsync string
				var loss float64
				d.MaybeScanArgs(t, "seed", &cfg.Seed)
				d.MaybeScanArgs(t, "nodes", &cfg.Nodes)
				d.MaybeScanArgs(t, "keys", &cfg.Keys)
				d.MaybeScanArgs(t, "degree", &cfg.Degree)
				d.MaybeScanArgs(t, "log-retain", &cfg.LogRetain)
				d.MaybeScanArgs(t, "fsync", &fsync)
				cfg.Fsync = Fsync(fsync)
				if d.HasArg("loss") {
					d.ScanArgs(t, "loss", &loss)
					cfg.Network = DefaultNetwork
					cfg.Network.Loss = loss
				}
				cfg.NoPush, cfg.NoCatchUp, cfg.NoCollect = d.HasArg("no-push"), d.HasArg("no-catch-up"), d.HasArg("no-collect")
				cfg.AckUnsynced = d.HasArg("ack-unsynced")
				cfg.LogAsCurrent, cfg.NoFreshCatchUp = d.HasArg("log-as-current"), d.HasArg("no-fresh-catch-up")
				for _, a := range []struct {
					name string
					to   *time.Duration
				}{{"forget-after", &cfg.ForgetAfter}, {"os-flush", &cfg.OSFlush}, {"detect", &cfg.Network.Detect}} {
					if d.HasArg(a.name) {
						var v string
						d.ScanArgs(t, a.name, &v)
						dur, err := time.ParseDuration(v)
						if err != nil {
							t.Fatalf("%s: %v", a.name, err)
						}
						if a.name == "detect" && cfg.Network == (Network{}) {
							cfg.Network = DefaultNetwork
						}
						*a.to = dur
					}
				}
				var sc *Scenario
				var err error
				if d.Cmd == "builtin" {
					sc, err = Builtin(d.CmdArgs[0].Key, cfg)
				} else {
					sc, err = ParseScenario([]byte(d.Input))
				}
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				s, err := New(cfg, sc)
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				r, err := s.Run()
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				last = s
				return summary(r)
			case "show":
				var out []string
				for _, n := range last.nodes {
					if n.up {
						out = append(out, fmt.Sprintf("node %d: %s", n.idx, last.show(n, d.CmdArgs[0].Key)))
					}
				}
				return strings.Join(out, "\n") + "\n"
			case "get":
				key := d.CmdArgs[0].Key
				id, ok := last.keys.lookup([]byte(key))
				if !ok {
					return "never written\n"
				}
				vals := map[string]int{}
				for _, n := range last.nodes {
					if !n.up {
						continue
					}
					r := n.st.get(id)
					v := string(r.Value.Data)
					switch {
					case !r.Written():
						v = "(absent)"
					case r.Value.Tombstone:
						v = "(deleted)"
					}
					vals[v]++
				}
				var out []string
				for v, c := range vals {
					out = append(out, fmt.Sprintf("%s on %d nodes", v, c))
				}
				sort.Strings(out)
				return strings.Join(out, "\n") + "\n"
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

func summary(r *Report) string {
	var b strings.Builder
	c := r.Convergence
	fmt.Fprintf(&b, "pass: %v\n", r.Pass)
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "failure: %s\n", f)
	}
	if c.Converged {
		fmt.Fprintf(&b, "converged: %v after the last event (%.2f rounds), %d live nodes\n", time.Duration(c.AfterMs)*time.Millisecond, c.AfterRounds, c.LiveNodes)
	} else {
		fmt.Fprintf(&b, "converged: no\n")
	}
	s, cu, k := r.Sessions, r.CatchUp, r.Check
	fmt.Fprintf(&b, "sessions: started=%d completed=%d equal=%d timed_out=%d pulled=%d pushed=%d\n",
		s.Started, s.Completed, s.Equal, s.TimedOut, s.KeysPulled, s.KeysPushed)
	fmt.Fprintf(&b, "catch-up: started=%d by_log=%d records=%d merkle_fallbacks=%d without_cursor=%d\n",
		cu.Started, cu.ByLog, cu.LogRecords, cu.MerkleFallbacks, cu.WithoutCursor)
	fmt.Fprintf(&b, "writes: acked=%d at_risk=%d at_risk_lost=%d departed=%d superseded=%d collected=%d set_aside=%d lost=%d resurrections=%d regressions=%d hlc_refused=%d\n",
		k.Acknowledged, k.AtRisk, k.AtRiskLost, k.DepartedOrigin, k.Superseded, k.Collected, k.SetAsideLost, k.Lost, k.Resurrections, k.Regressions, k.HLCRefused)
	if t := k.Typed; t.Writes > 0 {
		fmt.Fprintf(&b, "typed: writes=%d rejected=%d adds=%d present=%d counters=%d scores=%d lost_adds=%d not_removed=%d unknown=%d wrong_counters=%d wrong_scores=%d\n",
			t.Writes, t.Rejected, t.Adds, t.Present, t.Counters, t.Scores, t.LostAdds, t.NotRemoved, t.Unknown, t.WrongCounters, t.WrongScores)
	}
	if r.Config.Collect {
		g := r.GC
		fmt.Fprintf(&b, "gc: tombstones_collected=%d expired=%d traces_collected=%d set_aside=%d own_set_aside=%d forgotten=%d returned=%d stable_lag_p50=%v stable_lag_max=%v ack_bytes=%d\n",
			g.TombstonesCollected, g.ExpiredCollected, g.TracesCollected, g.SetAside, g.OwnSetAside, g.Forgotten, g.Returned,
			time.Duration(g.StableLagP50Ms)*time.Millisecond, time.Duration(g.StableLagMaxMs)*time.Millisecond, g.AckBytes)
	}
	fmt.Fprintf(&b, "bytes: meta=%d payload=%d\n", r.Bytes.Meta, r.Bytes.Payload)
	return b.String()
}
