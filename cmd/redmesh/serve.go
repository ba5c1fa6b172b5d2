package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/spf13/cobra"

	"github.com/redmesh/redmesh/bridge"
	"github.com/redmesh/redmesh/gossip"
	"github.com/redmesh/redmesh/metrics"
	"github.com/redmesh/redmesh/node"
	"github.com/redmesh/redmesh/version"
	"github.com/redmesh/redmesh/wal"
)

func serveCmd() *cobra.Command {
	var (
		cfg             node.Config
		configFile      string
		fsync           string
		retainBytes     string
		memoryBudget    string
		maxMemory       string
		logLevel        string
		logFormat       string
		pprofAddr       string
		metricsAddr     string
		maxBulk         string
		protected       bool
		serveStale      bool
		pskFile         string
		noMesh          bool
		backend         string
		shutdownTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a node",
		Long: `Run a node: a Redis-protocol server on --listen (loopback by default), storing
its keyspace and write-ahead log in --data. Every setting can also be given in
a YAML file (--config) under the flag's name; flags win over the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				if err := applyConfigFile(cmd.Flags(), configFile); err != nil {
					return err
				}
				abs, err := filepath.Abs(configFile)
				if err != nil {
					return fmt.Errorf("--config: %w", err)
				}
				cfg.ConfigFile = abs
				cfg.Rewrite = func(settings map[string]string) error { return rewriteConfigFile(abs, settings) }
			}
			level := new(slog.LevelVar) // CONFIG SET loglevel changes it
			logger, err := newLogger(os.Stderr, logFormat, logLevel, level)
			if err != nil {
				return err
			}
			cfg.LogLevel = level
			cfg.Logger = logger
			f, err := wal.ParseFsync(fsync)
			if err != nil {
				return fmt.Errorf("--fsync: %w", err)
			}
			cfg.Fsync = f
			if cfg.WALRetainBytes, err = parseSize(retainBytes); err != nil {
				return fmt.Errorf("--wal-retain-bytes: %w", err)
			}
			if cfg.MemoryBudget, err = parseSize(memoryBudget); err != nil {
				return fmt.Errorf("--memory: %w", err)
			}
			if cfg.MaxMemory, err = parseSize(maxMemory); err != nil {
				return fmt.Errorf("--maxmemory: %w", err)
			}
			if cfg.ProtoMaxBulkLen, err = parseSize(maxBulk); err != nil {
				return fmt.Errorf("--proto-max-bulk-len: %w", err)
			}
			cfg.ProtectedModeOff = !protected
			cfg.StaleDataRefused = !serveStale
			if !cmd.Flags().Changed("p2p-listen") {
				cfg.Mesh.Listen = nil // the default depends on protected mode
			}
			if pskFile != "" {
				psk, err := readPSK(pskFile)
				if err != nil {
					return err
				}
				cfg.Mesh.PSK = psk
			}
			cfg.Mesh.Disabled = noMesh
			cfg.ShutdownTimeout = shutdownTimeout
			if shutdownTimeout <= 0 {
				cfg.ShutdownTimeout = -1 // node.Config's zero is the default
			}
			if pprofAddr != "" {
				go servePprof(pprofAddr, logger)
			}
			return serve(cmd.Context(), cfg, metricsAddr, backend, logger)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&configFile, "config", "", "YAML file with these settings (keys are flag names)")
	fl.StringVar(&cfg.DataDir, "data", node.DefaultDataDir, "data directory")
	fl.StringVar(&cfg.Listen, "listen", node.DefaultListen, "RESP listen address (HOST:PORT)")
	fl.StringVar(&fsync, "fsync", string(wal.FsyncEverySec), "durability: always, everysec or no")
	durationFlag(fl, &cfg.MaxClockSkew, "max-clock-skew", time.Minute, "refuse remote versions further ahead of the local clock than this")
	fl.StringVar(&retainBytes, "wal-retain-bytes", "256MiB", "keep at most this much write-ahead log for catch-up")
	durationFlag(fl, &cfg.WALRetainAge, "wal-retain-age", 24*time.Hour, "keep write-ahead log entries at most this long")
	fl.StringVar(&memoryBudget, "memory", "64MiB", "memory for the log's memtables (Badger)")
	fl.StringVar(&maxMemory, "maxmemory", "0", "refuse client writes that add data once the node uses this much memory (0: no limit)")
	fl.StringVar(&cfg.RequirePass, "requirepass", "", "password clients must AUTH with")
	boolFlag(fl, &protected, "protected-mode", true, false, "without --requirepass, answer only loopback clients (yes or no)")
	boolFlag(fl, &serveStale, "serve-stale-data", true, false, "serve data commands before the first sync with the mesh is done (yes or no; no answers -MASTERDOWN)")
	fl.IntVar(&cfg.MaxClients, "maxclients", 10000, "most concurrent client connections")
	fl.IntVar(&cfg.IOThreads, "io-threads", 1, "event loops serving the clients")
	durationFlag(fl, &cfg.IdleTimeout, "timeout", 0, "close client connections idle this long, in seconds or as a duration (0: never)")
	durationFlag(fl, &shutdownTimeout, "shutdown-timeout", 10*time.Second, "at shutdown, wait this long for connected peers to acknowledge every write (0: do not wait)")
	fl.StringVar(&maxBulk, "proto-max-bulk-len", "512MiB", "largest argument a client may send")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&logFormat, "log-format", "text", "text (key=value) or json (one object a line)")
	fl.StringVar(&metricsAddr, "metrics-listen", "", "serve Prometheus metrics, /healthz and /readyz on this address (HOST:PORT; a bare port is loopback)")
	fl.StringVar(&pprofAddr, "pprof", "", "serve Go's profiler on this address (HOST:PORT), for debugging")
	fl.StringArrayVar(&cfg.Mesh.Listen, "p2p-listen", []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", gossip.DefaultPort), fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", gossip.DefaultPort)},
		"mesh listen multiaddr (repeatable); by default all interfaces when the mesh is protected, loopback otherwise")
	fl.StringArrayVar(&cfg.Mesh.Peers, "peer", nil, "bootstrap peer multiaddr ending in /p2p/PEER-ID (repeatable)")
	fl.StringVar(&pskFile, "psk-file", "", "pre-shared key file (redmesh keygen): a private mesh, TCP only")
	fl.StringArrayVar(&cfg.Mesh.AllowPeers, "allow-peer", nil, "connect only with these peer IDs (repeatable)")
	boolFlag(fl, &cfg.Mesh.MDNS, "mdns", true, true, "find peers on the local network with mDNS (when listening beyond loopback)")
	durationFlag(fl, &cfg.Mesh.SyncInterval, "sync-interval", time.Second, "anti-entropy (Merkle session) period")
	durationFlag(fl, &cfg.Mesh.ForgetAfter, "forget-after", 0, "forget a member silent for longer than this, so it no longer holds garbage collection back (0: never; see redmesh forget)")
	boolFlag(fl, &cfg.Mesh.InsecureOpenMesh, "insecure-open-mesh", false, true, "listen for peers beyond loopback with neither a PSK nor an allowlist")
	boolFlag(fl, &noMesh, "no-mesh", false, true, "run without a mesh (a single node)")
	fl.StringVar(&backend, "backend", "", "keep this Redis server in sync with the node: redis://[USER:PASSWORD@]HOST:PORT[/DB] or rediss://")
	fl.DurationVar(&cfg.ClockOffset, "clock-offset", 0, "shift this node's wall clock (testing)")
	_ = fl.MarkHidden("clock-offset")
	boolFlag(fl, &cfg.ClockOffsetSettable, "clock-offset-settable", false, true, "let MESH CLOCKOFFSET change the clock offset while the node runs (testing)")
	_ = fl.MarkHidden("clock-offset-settable")
	return cmd
}

// newLogger logs to w in format (text or json) from level on, which it
// sets in lv, the handler's level.
func newLogger(w io.Writer, format, level string, lv *slog.LevelVar) (*slog.Logger, error) {
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// servePprof serves net/http/pprof; only when asked, on the address given.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	log.Info("profiler listening", "addr", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Error("profiler", "err", err)
	}
}

// readPSK reads a pre-shared key file in libp2p's swarm key format.
func readPSK(path string) (pnet.PSK, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--psk-file: %w", err)
	}
	defer f.Close()
	psk, err := pnet.DecodeV1PSK(f)
	if err != nil {
		return nil, fmt.Errorf("--psk-file %s: not a swarm key (make one with redmesh keygen): %w", path, err)
	}
	return psk, nil
}

// serve runs a node until SHUTDOWN, SIGINT or SIGTERM. A signal shuts it
// down as SHUTDOWN does: wait for peers to acknowledge every write (up to
// --shutdown-timeout), stop accepting, let the commands under way finish
// and their writes commit, close the connections, checkpoint, exit 0. A
// second signal exits at once, with 1.
func serve(ctx context.Context, cfg node.Config, metricsAddr, backend string, log *slog.Logger) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// The memory and thread policies are process-wide, so the binary
	// applies them, not node.Open (tests run many nodes in one process).
	policyCtx, stopPolicies := context.WithCancel(ctx)
	var policies sync.WaitGroup
	policies.Go(func() { node.ManageMemory(policyCtx, node.DefaultMemoryPolicy(), log) })
	defer func() { stopPolicies(); policies.Wait() }()
	// The metrics listener comes first: /healthz answers, and /readyz says
	// the node is loading, while it opens its data.
	var ms *metrics.Server
	if metricsAddr != "" {
		var err error
		if ms, err = metrics.Listen(metricsAddr, log); err != nil {
			return err
		}
		defer ms.Close()
	}
	cfg.Stopping = func() { notifySystemd(log, daemon.SdNotifyStopping) }
	n, err := node.Open(cfg)
	if err != nil {
		return err
	}
	if ms != nil {
		ms.SetNode(n)
	}
	procs := node.DefaultProcsPolicy()
	procs.Served = n.CommandsProcessed
	policies.Go(func() { node.ManageProcs(policyCtx, procs, log) })
	log.Info("redmesh node started",
		"version", version.String(),
		"resp", n.Addr().String(),
		"data", cfg.DataDir,
		"fsync", string(cfg.Fsync),
		"peer_id", n.PeerID().String(),
		"node_id", n.ID().String(),
		"mesh", strings.Join(n.MeshAddrs(), " "))
	if backend != "" {
		br, err := bridge.Start(ctx, bridge.Options{URL: backend, Node: n, ShadowFile: filepath.Join(cfg.DataDir, "bridge.shadow"), Logger: log})
		if err != nil {
			n.Close()
			return err
		}
		defer br.Close()
		if ms != nil {
			if err := ms.Register(br.Metrics()...); err != nil {
				log.Warn("bridge metrics", "err", err)
			}
		}
	}
	served := make(chan error, 1)
	go func() { served <- n.Serve(ctx) }()
	// Its data loaded and its listeners bound: ready, for systemd's
	// Type=notify.
	notifySystemd(log, daemon.SdNotifyReady)

	// A signal is a second one while the shutdown the last signal began is
	// under way, as the node says: SHUTDOWN ABORT ends that at once, while
	// the aborted shutdown's outcome reaches shutdowns only later, maybe
	// after the next signal, which is then a first one again (and its
	// shutdown's outcome the one awaited).
	var shutdowns <-chan error
	shuttingDown := false
	for done := false; !done; {
		select {
		case sig := <-sigs:
			if shuttingDown && n.ShutdownUnderWay() {
				log.Warn("second signal: exiting now, without finishing the shutdown", "signal", sig.String())
				return fmt.Errorf("exited on a second %s before the shutdown finished", sig)
			}
			log.Info("shutting down", "signal", sig.String())
			shuttingDown = true
			shutdowns = n.StartShutdown(node.ShutdownOptions{})
		case err := <-shutdowns:
			shutdowns = nil
			if errors.Is(err, node.ErrShutdownAborted) || errors.Is(err, node.ErrShutdownRefused) {
				shuttingDown = false // serving on
				notifySystemd(log, daemon.SdNotifyReady)
			}
		case <-n.Done():
			done = true
		case err := <-served:
			if err != nil { // cannot accept: shut down, and say why
				n.Close()
				return fmt.Errorf("serve: %w", err)
			}
			served = nil // the listener closed: a shutdown is under way
		}
	}
	if ms != nil {
		ms.Close() // no scrape reads the node once it has closed
	}
	if err := n.ShutdownErr(); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	log.Info("stopped")
	return nil
}

// notifySystemd tells systemd the node's state (READY=1, STOPPING=1) when
// it runs the node as a Type=notify service; elsewhere it does nothing.
func notifySystemd(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("tell systemd the node's state", "state", state, "err", err)
	}
}
