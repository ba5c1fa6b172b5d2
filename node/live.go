package node

import (
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// liveSettings are the settings CONFIG SET changes while the node runs;
// the connections read them atomically, each time they need one.
type liveSettings struct {
	requirePass      atomic.Pointer[string]
	maxClients       atomic.Int64
	idleTimeout      atomic.Int64 // a time.Duration
	protectedModeOff atomic.Bool
	shutdownTimeout  atomic.Int64 // a time.Duration; 0: do not wait

	// changed names the settings CONFIG SET changed, with their values as
	// a configuration file holds them, for CONFIG REWRITE.
	mu      sync.Mutex
	changed map[string]string
}

func (l *liveSettings) init(cfg *Config) {
	pass := cfg.RequirePass
	l.requirePass.Store(&pass)
	l.maxClients.Store(int64(cfg.MaxClients))
	l.idleTimeout.Store(int64(cfg.IdleTimeout))
	l.protectedModeOff.Store(cfg.ProtectedModeOff)
	l.shutdownTimeout.Store(int64(max(cfg.ShutdownTimeout, 0)))
	l.changed = map[string]string{}
}

func (l *liveSettings) password() string       { return *l.requirePass.Load() }
func (l *liveSettings) timeout() time.Duration { return time.Duration(l.idleTimeout.Load()) }

// setChanged records a setting CONFIG SET changed: its name in the
// configuration file, and its value there.
func (l *liveSettings) setChanged(name, value string) {
	l.mu.Lock()
	l.changed[name] = value
	l.mu.Unlock()
}

func (l *liveSettings) changes() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.changed)
}

// Redis's log levels and slog's: CONFIG SET loglevel takes either.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "verbose": slog.LevelInfo, "notice": slog.LevelInfo,
	"info": slog.LevelInfo, "warning": slog.LevelWarn, "warn": slog.LevelWarn,
	"error": slog.LevelError, "nothing": slog.LevelError + 4,
}

// redisLogLevel names a level as CONFIG GET loglevel shows it.
func redisLogLevel(l slog.Level) string {
	switch {
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "notice"
	case l <= slog.LevelWarn:
		return "warning"
	case l <= slog.LevelError:
		return "warning" // Redis has no "error" level: warning is the closest
	}
	return "nothing"
}
