// Package chaos runs real redmesh processes, each in a network namespace of
// its own joined to the others by a bridge, injects faults on a seeded
// schedule (partitions, packet loss, delay, kill -9, pauses, clock skew, a
// full disk) under a workload of go-redis clients, heals, and checks the
// outcome in Jepsen's manner: every node converges to identical keys and
// typed states, no acknowledged write is lost unless a newer version
// superseded it, no deleted key or removed element comes back, counters add
// up to their acknowledged increments, a list's values are gone only if a
// pop or LSET can have taken them and lie in the order their node's writes
// gave them, no node's versions go back however
// its clock jumps, and no node ever held another's version further ahead of
// its own clock than --max-clock-skew.
//
// It needs root, ip (iproute2) and nft (nftables); without them the tests
// are skipped, except in CI (CI set), where they fail.
//
// The default run is short (3 nodes, 40 s of faults). A long run:
//
//	go test ./e2e/chaos -run TestChaos -count=1 -v -timeout 0 \
//	    -chaos.nodes 5 -chaos.duration 30m
package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	flagSeed     = flag.Int64("chaos.seed", 0, "seed of the fault schedule and workload (0: pick one and print it)")
	flagNodes    = flag.Int("chaos.nodes", 3, "nodes in the mesh")
	flagDuration = flag.Duration("chaos.duration", 0, "how long to inject faults (0: the short run's 40s)")
	flagFaults   = flag.String("chaos.faults", "", "comma-separated fault kinds to draw from, or all (default: all)")
	flagRoundMin = flag.Duration("chaos.round-min", 8*time.Second, "shortest round of faults")
	flagRoundMax = flag.Duration("chaos.round-max", 16*time.Second, "longest round of faults")
	flagBinary   = flag.String("chaos.binary", "", "run this redmesh binary instead of building one (e.g. a deliberately broken build)")
	flagReport   = flag.String("chaos.report", "", "write the run's summary as JSON to this file")
	flagKeep     = flag.Bool("chaos.keep", false, "keep the node logs of a run that passed too")
	flagMutant   = flag.String("chaos.mutant", "", "run a deliberately broken build: this mutant of the source (see mutant_test.go); the run should fail")
)

// buildDir holds the binary built for this run; TestMain removes it.
var buildDir string

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// redmeshBinary builds the binary once per test run (with -race when the
// tests run with it), or a mutant of it (-chaos.mutant), or returns
// -chaos.binary.
func redmeshBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if *flagBinary != "" {
			binary = *flagBinary
			return
		}
		dir, err := os.MkdirTemp("", "redmesh-chaos-build-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		binary = filepath.Join(dir, "redmesh")
		if *flagMutant != "" {
			buildErr = buildMutant(*flagMutant, "../..", dir, binary)
			return
		}
		args := []string{"build", "-o", binary}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "../../cmd/redmesh")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build redmesh: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	flag.Parse()
	redis.SetLogger(quietLogger{}) // refused dials against killed or cut-off nodes are the point
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
