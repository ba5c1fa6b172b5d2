package keyspace

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redmesh/redmesh/wal"
)

// The crash test runs the test binary again as a child that writes with
// fsync always while it checkpoints over and over, and kills it with
// SIGKILL in the middle of a checkpoint.
const crashChildEnv = "REDMESH_KEYSPACE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild writes until it is killed: every acknowledged write is printed
// as "ack KEY VALUE", every checkpoint begun as "ckpt". Each writer's
// values only grow.
func crashChild(dir string) {
	l, err := wal.Open(wal.Options{Dir: dir, Fsync: wal.FsyncAlways, Logger: quiet})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	db, err := Open(Options{Log: l, Logger: quiet})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var out sync.Mutex
	say := func(f string, a ...any) {
		out.Lock()
		fmt.Fprintf(os.Stdout, f+"\n", a...)
		out.Unlock()
	}
	// Filler keys make each checkpoint take a while.
	if db.KeyCount() == 0 {
		for i := range 50 {
			db.Update(context.Background(), func(tx *Tx) error {
				for j := range 1000 {
					tx.Apply(fmt.Appendf(nil, "fill%d:%d", i, j), setRec(1, strings.Repeat("f", 100)))
				}
				return nil
			})
		}
	}
	go func() {
		for {
			say("ckpt")
			if err := db.checkpoint(); err != nil {
				say("error %v", err)
			}
			say("done")
		}
	}()
	start := uint64(time.Now().UnixNano())
	for w := range 8 {
		go func() {
			for i := uint64(0); ; i++ {
				key := fmt.Sprintf("w%d:%d", w, i%300)
				val := strconv.FormatUint(start+i, 10)
				err := db.Update(context.Background(), func(tx *Tx) error {
					_, _, err := tx.Apply([]byte(key), setRec(start+i, val))
					return err
				})
				if err != nil {
					say("error %v", err)
					return
				}
				say("ack %s %s", key, val)
			}
		}()
	}
	select {}
}

func TestKillDuringCheckpointLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a child process")
	}
	dir := t.TempDir()
	acked := map[string]uint64{}
	r := rand.New(rand.NewPCG(11, 12))
	midway := 0 // rounds killed between a checkpoint's start and end
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill a random while into the third checkpoint of the run.
		ckpts, inCheckpoint, killedMidway := 0, false, false
		deadline := time.After(60 * time.Second)
		var killAt <-chan time.Time
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				f := strings.Fields(line)
				switch f[0] {
				case "done":
					inCheckpoint = false
				case "ckpt":
					inCheckpoint = true
					if ckpts++; ckpts == 3 {
						killAt = time.After(time.Duration(r.IntN(40)) * time.Millisecond)
					}
				case "ack":
					v, _ := strconv.ParseUint(f[2], 10, 64)
					acked[f[1]] = max(acked[f[1]], v)
				default:
					t.Fatalf("child: %s", line)
				}
			case <-killAt:
				cmd.Process.Kill()
				killAt, killedMidway = nil, inCheckpoint
			case <-deadline:
				cmd.Process.Kill()
				t.Fatal("the child took too long")
			}
		}
		cmd.Wait()
		if killedMidway {
			midway++
		}
		if len(acked) == 0 {
			t.Fatal("nothing acknowledged")
		}
		l, err := wal.Open(wal.Options{Dir: dir, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Check(l)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		db, err := Open(Options{Log: l, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range acked {
			got, _ := strconv.ParseUint(string(db.Get([]byte(k)).Value.Data), 10, 64)
			if got < want {
				t.Fatalf("round %d: %s = %d, acknowledged %d", round, k, got, want)
			}
		}
		t.Logf("round %d: %d keys verified after kill -9 (mid-checkpoint: %v); %+v", round, len(acked), killedMidway, rep)
		db.Close()
		l.Close()
	}
	if midway == 0 {
		t.Fatal("no kill landed in the middle of a checkpoint")
	}
}
