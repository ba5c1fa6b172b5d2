package node

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/redmesh/redmesh/gossip"
	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Config is a node's configuration. The zero value of every field is its
// default, so Config{} runs a node on 127.0.0.1:6380 with data in
// ./redmesh-data.
type Config struct {
	// DataDir holds Badger: keyspace, log, identity, clock. ./redmesh-data.
	DataDir string
	// Listen is the RESP address. 127.0.0.1:6380: beside a local Redis on
	// 6379, and loopback only unless told otherwise.
	Listen string
	// Fsync is the durability mode: always, everysec (default) or no.
	Fsync wal.Fsync
	// MaxClockSkew is how far ahead of this node's clock a remote version may
	// be before it is refused. One minute.
	MaxClockSkew time.Duration
	// ClockOffset shifts this node's wall clock, to test a clock that is
	// wrong or was set back. Zero in production.
	ClockOffset time.Duration
	// ClockOffsetSettable lets MESH CLOCKOFFSET change ClockOffset while the
	// node runs, to test a wall clock that jumps (NTP stepping it, a VM
	// resumed): a restart with another offset cannot show what a running
	// clock does. Off in production, where the subcommand does not exist.
	ClockOffsetSettable bool
	// WALRetainBytes and WALRetainAge bound the log (256 MiB, 24h).
	WALRetainBytes int64
	WALRetainAge   time.Duration
	// RequirePass, if set, is the password clients must AUTH with.
	RequirePass string
	// ProtectedModeOff lets clients from beyond loopback in without a
	// password. By default (protected mode, as in Redis) a node without
	// RequirePass answers only loopback clients.
	ProtectedModeOff bool
	// MaxClients bounds concurrent client connections (10,000).
	MaxClients int
	// IdleTimeout closes a client connection idle this long; 0 never does.
	IdleTimeout time.Duration
	// ProtoMaxBulkLen bounds one argument of a request (512 MB).
	ProtoMaxBulkLen int64
	// IOThreads is how many event loops serve the clients, each
	// connection on one of them (1, as Redis's one thread).
	IOThreads int
	// MemoryBudget is roughly what Badger may use for its memtables.
	MemoryBudget int64
	// MaxMemory, if not zero, is Redis's maxmemory with the noeviction
	// policy: over it, client commands that may add data are refused, while
	// records from peers are still applied (a node must converge).
	MaxMemory int64
	// ConfigFile is the file the configuration was read from, if any
	// (INFO's config_file).
	ConfigFile string
	// LogLevel, if set, is the level of Logger's handler, which CONFIG SET
	// loglevel changes.
	LogLevel *slog.LevelVar
	// Rewrite, if set, writes settings changed by CONFIG SET (by their names
	// in the configuration file, with values as it holds them) to the
	// configuration file: CONFIG REWRITE.
	Rewrite func(settings map[string]string) error
	// ShutdownTimeout is how long a shutdown waits for connected peers to
	// acknowledge this node's writes (Redis's shutdown-timeout, for its
	// replicas): 10 s; negative: not at all. CONFIG SET changes it.
	ShutdownTimeout time.Duration
	// Stopping, if set, is called when a shutdown begins (the service
	// manager is told).
	Stopping func()
	// Logger receives the node's logs; slog.Default() when nil.
	Logger *slog.Logger
	// StaleDataRefused is --serve-stale-data no: until the node's first
	// sync with the mesh is done, data commands answer -MASTERDOWN (Redis's
	// replica-serve-stale-data). By default stale data is served.
	StaleDataRefused bool
	// Mesh configures the link to other nodes (libp2p); the node fills in
	// its identity.
	Mesh gossip.Config
}

// Defaults.
const (
	DefaultDataDir = "./redmesh-data"
	DefaultListen  = "127.0.0.1:6380"
)

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Fsync == "" {
		c.Fsync = wal.FsyncEverySec
	}
	if _, err := wal.ParseFsync(string(c.Fsync)); err != nil {
		return err
	}
	if c.MaxClockSkew <= 0 {
		c.MaxClockSkew = hlc.DefaultMaxSkew
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 10_000
	}
	if c.ProtoMaxBulkLen <= 0 {
		c.ProtoMaxBulkLen = 512 << 20
	}
	if c.IOThreads <= 0 {
		c.IOThreads = 1
	}
	if c.ProtoMaxBulkLen > record.MaxValueLen {
		return fmt.Errorf("proto-max-bulk-len %d exceeds the largest value a record holds (%d)", c.ProtoMaxBulkLen, record.MaxValueLen)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	return nil
}
