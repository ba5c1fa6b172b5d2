package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/redmesh/redmesh/bridge"
	"github.com/redmesh/redmesh/gossip"
	"github.com/redmesh/redmesh/node"
	"github.com/redmesh/redmesh/wal"
)

func importCmd() *cobra.Command {
	var (
		dataDir   string
		fsync     string
		count     int64
		logLevel  string
		logFormat string
	)
	cmd := &cobra.Command{
		Use:   "import redis://[USER:PASSWORD@]HOST:PORT[/DB]",
		Short: "Copy a Redis server's dataset into a data directory",
		Long: `Read the whole dataset of a Redis server (rediss:// for TLS) with SCAN and
pipelined type-aware reads, and write it into the data directory --data as
local writes, each key with a version, as a client's writes would be: a node
started on the directory then serves the data and gives it to its mesh.
Strings (counters included), hashes, sets, sorted sets and lists are copied
with their deadlines; keys of types redmesh does not model (streams, modules'
types) are carried whole, as their DUMP payload in a string (see README). The directory may hold data already: the
import merges with it. The Redis server is only read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(os.Stderr, logFormat, logLevel, new(slog.LevelVar))
			if err != nil {
				return err
			}
			f, err := wal.ParseFsync(fsync)
			if err != nil {
				return fmt.Errorf("--fsync: %w", err)
			}
			ctx := cmd.Context()
			rdb, err := bridge.Dial(ctx, args[0])
			if err != nil {
				return err
			}
			defer rdb.Close()
			n, err := node.Open(node.Config{DataDir: dataDir, Listen: "127.0.0.1:0", Fsync: f, Logger: log, Mesh: gossip.Config{Disabled: true}})
			if err != nil {
				return err
			}
			start := time.Now()
			var stats bridge.TakeInStats
			err = bridge.TakeIn(ctx, rdb, n, bridge.TakeInOptions{Count: count}, &stats, log)
			if cerr := n.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("close data directory: %w", cerr)
			}
			if err != nil {
				return fmt.Errorf("import from %s: %w", bridge.Redact(args[0]), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d keys (%d written, %d of unmodelled types carried whole, %d unreadable skipped) in %s\n",
				stats.Scanned.Load(), stats.Written.Load(), stats.Whole.Load(), stats.Skipped.Load(), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dataDir, "data", node.DefaultDataDir, "data directory (not in use by a running node)")
	fl.StringVar(&fsync, "fsync", string(wal.FsyncEverySec), "durability: always, everysec or no")
	fl.Int64Var(&count, "count", 1000, "SCAN COUNT, and keys read per pipeline")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&logFormat, "log-format", "text", "text (key=value) or json (one object a line)")
	return cmd
}
