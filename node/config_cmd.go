package node

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// configParam is one parameter CONFIG GET shows. set is nil for a parameter
// that cannot change while the node runs; otherwise it checks a new value
// and returns what applies it (nil when there is nothing to change), so
// that CONFIG SET can check every value before it applies any.
type configParam struct {
	name string
	get  func(n *Node) string
	set  func(n *Node, value string) (apply func(), err error)
}

func fixed(v string) func(*Node) string { return func(*Node) string { return v } }

// only accepts the one value redmesh runs with, so that scripts written for
// Redis (CONFIG SET appendonly yes, CONFIG SET save "") keep working, and
// refuses any other with why.
func only(want, why string) func(*Node, string) (func(), error) {
	return func(_ *Node, v string) (func(), error) {
		if strings.EqualFold(v, want) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s", why)
	}
}

// Redis's reasons for a refused value, to the byte.
const (
	errNotParsed = "argument couldn't be parsed into an integer"
	errYesNo     = "argument must be 'yes' or 'no'"
)

// intParam reads an integer in [lo, hi] and hands it to apply.
func intParam(lo, hi int64, apply func(n *Node, v int64)) func(*Node, string) (func(), error) {
	return func(n *Node, s string) (func(), error) {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, errors.New(errNotParsed)
		}
		if v < lo || v > hi {
			return nil, fmt.Errorf("argument must be between %d and %d inclusive", lo, hi)
		}
		return func() { apply(n, v) }, nil
	}
}

// parseYesNo reads a boolean setting as Redis does: yes or no, in any case.
func parseYesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, errors.New(errYesNo)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// configParams are the parameters of CONFIG GET and SET, in the order CONFIG
// GET lists the matches of a pattern.
var configParams = []configParam{
	{name: "bind", get: func(n *Node) string {
		host, _, _ := net.SplitHostPort(n.Addr().String())
		return host
	}},
	{name: "port", get: func(n *Node) string { return n.port() }},
	{name: "databases", get: fixed("1")},
	{name: "dir", get: func(n *Node) string {
		if abs, err := filepath.Abs(n.cfg.DataDir); err == nil {
			return abs
		}
		return n.cfg.DataDir
	}},
	{name: "appendonly", get: fixed("yes"),
		set: only("yes", "redmesh always keeps its write-ahead log")},
	{name: "appendfsync", get: func(n *Node) string { return string(n.wal.Fsync()) },
		set: func(n *Node, v string) (func(), error) {
			if strings.EqualFold(v, string(n.wal.Fsync())) {
				return nil, nil
			}
			return nil, fmt.Errorf("the durability mode is set at start (--fsync)")
		}},
	{name: "save", get: fixed(""),
		set: only("", "redmesh takes no snapshots; its write-ahead log is always on")},
	{name: "maxmemory", get: func(n *Node) string { return strconv.FormatInt(n.maxMemory.Load(), 10) },
		set: func(n *Node, v string) (func(), error) {
			b, err := ParseMemory(v)
			if err != nil {
				return nil, err
			}
			return func() {
				n.maxMemory.Store(b)
				n.live.setChanged("maxmemory", v)
				n.sampleMemory()
			}, nil
		}},
	{name: "maxmemory-policy", get: fixed("noeviction"),
		set: only("noeviction", "redmesh evicts nothing: keys are shared with peers")},
	{name: "maxclients", get: func(n *Node) string { return itoa(n.live.maxClients.Load()) },
		set: intParam(1, math.MaxUint32, func(n *Node, v int64) {
			n.live.maxClients.Store(v)
			n.live.setChanged("maxclients", itoa(v))
		})},
	{name: "timeout", get: func(n *Node) string { return itoa(int64(n.live.timeout() / time.Second)) },
		set: intParam(0, math.MaxInt32, func(n *Node, v int64) {
			n.live.idleTimeout.Store(int64(time.Duration(v) * time.Second))
			n.live.setChanged("timeout", itoa(v))
		})},
	{name: "shutdown-timeout", get: func(n *Node) string {
		return itoa(int64(time.Duration(n.live.shutdownTimeout.Load()) / time.Second))
	}, set: intParam(0, math.MaxInt32, func(n *Node, v int64) {
		n.live.shutdownTimeout.Store(int64(time.Duration(v) * time.Second))
		n.live.setChanged("shutdown-timeout", itoa(v))
	})},
	{name: "proto-max-bulk-len", get: func(n *Node) string { return itoa(n.maxStringLen()) }},
	// As Redis does, CONFIG GET shows the password to whoever may run CONFIG.
	{name: "requirepass", get: func(n *Node) string { return n.live.password() },
		set: func(n *Node, v string) (func(), error) {
			return func() {
				n.live.requirePass.Store(&v)
				n.live.setChanged("requirepass", v)
			}, nil
		}},
	{name: "protected-mode", get: func(n *Node) string { return yesNo(!n.live.protectedModeOff.Load()) },
		set: func(n *Node, v string) (func(), error) {
			on, err := parseYesNo(v)
			if err != nil {
				return nil, err
			}
			return func() {
				n.live.protectedModeOff.Store(!on)
				n.live.setChanged("protected-mode", yesNo(on))
			}, nil
		}},
	{name: "loglevel", get: func(n *Node) string {
		if n.cfg.LogLevel == nil {
			return "notice"
		}
		return redisLogLevel(n.cfg.LogLevel.Level())
	}, set: func(n *Node, v string) (func(), error) {
		lv, ok := logLevels[strings.ToLower(v)]
		if !ok {
			return nil, errors.New("argument(s) must be one of the following: debug, verbose, notice, warning")
		}
		if n.cfg.LogLevel == nil {
			return nil, errors.New("the log level is fixed in this process")
		}
		return func() {
			n.cfg.LogLevel.Set(lv)
			n.live.setChanged("log-level", strings.ToLower(lv.String()))
		}, nil
	}},
	// redmesh's own: the anti-entropy period, in seconds or as a duration.
	{name: "sync-interval", get: func(n *Node) string {
		if m := n.mesh.Load(); m != nil {
			return m.SyncInterval().String()
		}
		return n.cfg.Mesh.SyncInterval.String()
	}, set: func(n *Node, v string) (func(), error) {
		d, err := time.ParseDuration(v)
		if secs, ierr := strconv.ParseInt(v, 10, 64); ierr == nil {
			d, err = time.Duration(secs)*time.Second, nil
		}
		if err != nil || d < time.Millisecond || d > 24*time.Hour {
			return nil, errors.New("argument must be a duration between 1ms and 24h (or whole seconds)")
		}
		m := n.mesh.Load()
		if m == nil {
			return nil, errors.New("this node runs without a mesh")
		}
		return func() {
			m.SetSyncInterval(d)
			n.live.setChanged("sync-interval", d.String())
		}, nil
	}},
	// As Redis's replica-serve-stale-data, for the first sync with the mesh.
	{name: "serve-stale-data", get: func(n *Node) string { return yesNo(n.serveStale.Load()) },
		set: func(n *Node, v string) (func(), error) {
			on, err := parseYesNo(v)
			if err != nil {
				return nil, err
			}
			return func() {
				n.serveStale.Store(on)
				n.live.setChanged("serve-stale-data", yesNo(on))
			}, nil
		}},
	{name: "latency-tracking", get: fixed("yes"), set: only("yes", "latency is always tracked")},
	{name: "latency-tracking-info-percentiles", get: fixed("50 99 99.9")},
	{name: "notify-keyspace-events", get: fixed(""),
		set: only("", "keyspace notifications are not supported")},
	{name: "hz", get: fixed("10")},
	{name: "cluster-enabled", get: fixed("no")},
}

// configValue is a parameter's value as CONFIG GET shows it.
func configValue(n *Node, name string) string {
	for _, p := range configParams {
		if p.name == name {
			return p.get(n)
		}
	}
	return ""
}

func lookupConfig(name string) *configParam {
	for i := range configParams {
		if strings.EqualFold(configParams[i].name, name) {
			return &configParams[i]
		}
	}
	return nil
}

// cmdConfig is CONFIG GET, SET and RESETSTAT.
func cmdConfig(n *Node, c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "get":
		if len(args) < 3 {
			c.w.WriteError("ERR wrong number of arguments for 'config|get' command")
			return
		}
		configGet(n, c, args[2:])
	case "set":
		if len(args) < 4 {
			c.w.WriteError("ERR wrong number of arguments for 'config|set' command")
			return
		}
		if len(args)%2 != 0 {
			c.w.WriteError(errSyntax)
			return
		}
		configSet(n, c, args[2:])
	case "resetstat":
		if len(args) != 2 {
			c.w.WriteError("ERR wrong number of arguments for 'config|resetstat' command")
			return
		}
		n.resetStats()
		c.w.WriteString("OK")
	case "rewrite":
		if len(args) != 2 {
			c.w.WriteError("ERR wrong number of arguments for 'config|rewrite' command")
			return
		}
		if n.cfg.Rewrite == nil || n.cfg.ConfigFile == "" {
			c.w.WriteError("ERR The server is running without a config file")
			return
		}
		if err := n.cfg.Rewrite(n.live.changes()); err != nil {
			n.log.Warn("CONFIG REWRITE", "file", n.cfg.ConfigFile, "err", err)
			c.w.WriteError(sanitizeError("ERR Rewriting config file: " + err.Error()))
			return
		}
		n.log.Info("CONFIG REWRITE executed with success", "file", n.cfg.ConfigFile)
		c.w.WriteString("OK")
	case "help":
		if len(args) != 2 {
			c.w.WriteError("ERR wrong number of arguments for 'config|help' command")
			return
		}
		writeHelp(c, "CONFIG", configHelp)
	default:
		c.w.WriteError(fmt.Sprintf("ERR unknown subcommand '%s'. Try CONFIG HELP.", truncate(args[1], 128)))
	}
}

// configGet answers name, value pairs for every parameter matching any of
// the patterns (globs, case-insensitive), each once. As Redis 7.0 does, a
// name given without glob characters is answered as it was spelled.
func configGet(n *Node, c *client, patterns [][]byte) {
	seen := map[string]bool{}
	var out []string
	add := func(name string, p *configParam) {
		if !seen[p.name] {
			seen[p.name] = true
			out = append(out, name, p.get(n))
		}
	}
	for _, pat := range patterns {
		if !strings.ContainsAny(string(pat), "*?[") {
			if p := lookupConfig(string(pat)); p != nil {
				add(string(pat), p)
			}
			continue
		}
		for i := range configParams {
			if globMatch(pat, []byte(configParams[i].name), true) {
				add(configParams[i].name, &configParams[i])
			}
		}
	}
	c.w.WriteArray(len(out))
	for _, s := range out {
		c.w.WriteBulkString(s)
	}
}

// configSet checks every pair before applying any, as Redis does, and
// answers with Redis's error forms.
func configSet(n *Node, c *client, pairs [][]byte) {
	seen := map[string]bool{}
	params := make([]*configParam, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		name := string(pairs[i])
		p := lookupConfig(name)
		if p == nil {
			c.w.WriteError(sanitizeError("ERR Unknown option or number of arguments for CONFIG SET - '" + name + "'"))
			return
		}
		params = append(params, p)
	}
	for i, p := range params {
		name := string(pairs[2*i])
		switch {
		case p.set == nil:
			c.w.WriteError(configSetFailed(name, "can't set immutable config"))
			return
		case seen[p.name]:
			c.w.WriteError(configSetFailed(name, "duplicate parameter"))
			return
		}
		seen[p.name] = true
	}
	applies := make([]func(), 0, len(params))
	for i, p := range params {
		apply, err := p.set(n, string(pairs[2*i+1]))
		if err != nil {
			c.w.WriteError(configSetFailed(string(pairs[2*i]), err.Error()))
			return
		}
		if apply != nil {
			applies = append(applies, apply)
		}
	}
	for _, apply := range applies {
		apply()
	}
	c.w.WriteString("OK")
}

func configSetFailed(name, why string) string {
	return sanitizeError("ERR CONFIG SET failed (possibly related to argument '" + name + "') - " + why)
}

// ParseMemory reads a memory size as Redis does: a number, optionally
// followed by k, kb, m, mb, g or gb (any case), where k is 1000 and kb 1024.
func ParseMemory(v string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1}}
	lv := strings.ToLower(v)
	mul := int64(1)
	for _, u := range units {
		if strings.HasSuffix(lv, u.suffix) {
			lv, mul = strings.TrimSuffix(lv, u.suffix), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(lv, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("argument must be a memory value")
	}
	return n * mul, nil
}
