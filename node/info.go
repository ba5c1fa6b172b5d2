package node

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redmesh/redmesh/version"
)

// newRunID identifies a node's run, as Redis's run_id: 40 hex characters,
// new at every start.
func newRunID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// infoSection is one section of INFO: its name as printed, whether plain
// INFO (the default sections) includes it, and its lines.
type infoSection struct {
	name       string
	byDefault  bool
	everything bool // only in INFO everything (and when named)
	optional   bool // left out when it has no lines
	lines      func(n *Node) []string
}

// infoSections are in Redis's order.
var infoSections = []infoSection{
	{name: "Server", byDefault: true, lines: infoServer},
	{name: "Clients", byDefault: true, lines: infoClients},
	{name: "Memory", byDefault: true, lines: infoMemory},
	{name: "Persistence", byDefault: true, lines: infoPersistence},
	{name: "Stats", byDefault: true, lines: infoStats},
	{name: "Replication", byDefault: true, lines: infoReplication},
	{name: "CPU", byDefault: true, lines: infoCPU},
	{name: "Modules", everything: true, lines: func(*Node) []string { return nil }},
	{name: "Commandstats", lines: infoCommandstats},
	{name: "Errorstats", byDefault: true, lines: infoErrorstats},
	{name: "Latencystats", lines: infoLatencystats},
	{name: "Cluster", byDefault: true, lines: func(*Node) []string { return []string{"cluster_enabled:0"} }},
	{name: "Keyspace", byDefault: true, lines: infoKeyspace},
	{name: "Bridge", byDefault: true, optional: true, lines: infoExtra}, // SetInfo (local.go)
}

// cmdInfo is INFO [section ...]: no section means the default ones; "all"
// is every section but Modules, "everything" every one; an unknown section
// adds nothing, as in Redis.
func cmdInfo(n *Node, c *client, args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	if len(want) == 0 {
		want["default"] = true
	}
	var b strings.Builder
	for _, s := range infoSections {
		name := strings.ToLower(s.name)
		if !(want[name] || want["everything"] ||
			(want["all"] && !s.everything) ||
			(want["default"] && s.byDefault)) {
			continue
		}
		lines := s.lines(n)
		if s.optional && len(lines) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + s.name + "\r\n")
		for _, l := range lines {
			b.WriteString(l + "\r\n")
		}
	}
	c.w.WriteBulkString(b.String())
}

func itoa(v int64) string   { return strconv.FormatInt(v, 10) }
func utoa(v uint64) string  { return strconv.FormatUint(v, 10) }
func kv(k, v string) string { return k + ":" + v }

func (n *Node) port() string {
	_, port, _ := net.SplitHostPort(n.Addr().String())
	return port
}

func infoServer(n *Node) []string {
	up := time.Since(n.started)
	exe, _ := os.Executable()
	return []string{
		kv("redis_version", redisVersion),
		kv("redmesh_version", version.String()),
		"redis_git_sha1:00000000",
		"redis_git_dirty:0",
		"redis_build_id:0",
		"redis_mode:standalone",
		kv("os", runtime.GOOS+" "+runtime.GOARCH),
		kv("arch_bits", strconv.Itoa(strconv.IntSize)),
		"multiplexing_api:go",
		kv("go_version", runtime.Version()),
		kv("process_id", strconv.Itoa(os.Getpid())),
		"process_supervised:no",
		kv("run_id", n.runID),
		kv("peer_id", n.peerID.String()),
		kv("node_id", n.id.String()),
		kv("tcp_port", n.port()),
		kv("server_time_usec", itoa(n.now().UnixMicro())),
		kv("uptime_in_seconds", itoa(int64(up.Seconds()))),
		kv("uptime_in_days", itoa(int64(up.Hours()/24))),
		"hz:10",
		"configured_hz:10",
		kv("executable", exe),
		kv("config_file", n.cfg.ConfigFile),
	}
}

func infoClients(n *Node) []string {
	return []string{
		kv("connected_clients", itoa(n.nclients.Load())),
		"cluster_connections:0",
		kv("maxclients", configValue(n, "maxclients")),
		"client_recent_max_input_buffer:0",
		"client_recent_max_output_buffer:0",
		kv("blocked_clients", itoa(n.blocked.count())),
		"tracking_clients:0",
		"clients_in_timeout_table:0",
	}
}

// rssBytes is the process's resident set size, from /proc where there is
// one.
func rssBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}

// bytesToHuman is Redis's: 1.63M and the like.
func bytesToHuman(v uint64) string {
	d := float64(v)
	units := []string{"K", "M", "G", "T", "P"}
	if v < 1024 {
		return fmt.Sprintf("%dB", v)
	}
	for i, u := range units {
		if d < float64(uint64(1)<<(10*(i+2))) || i == len(units)-1 {
			return fmt.Sprintf("%.2f%s", d/float64(uint64(1)<<(10*(i+1))), u)
		}
	}
	return ""
}

func infoMemory(n *Node) []string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	used := n.usedMemory()
	for {
		peak := n.stats.memoryPeak.Load()
		if used <= peak || n.stats.memoryPeak.CompareAndSwap(peak, used) {
			break
		}
	}
	peak := n.stats.memoryPeak.Load()
	rss, ok := rssBytes()
	if !ok {
		rss = ms.Sys - ms.HeapReleased
	}
	frag := 0.0
	if used > 0 {
		frag = float64(rss) / float64(used)
	}
	return []string{
		kv("used_memory", utoa(used)),
		kv("used_memory_human", bytesToHuman(used)),
		kv("used_memory_rss", utoa(rss)),
		kv("used_memory_rss_human", bytesToHuman(rss)),
		kv("used_memory_peak", utoa(peak)),
		kv("used_memory_peak_human", bytesToHuman(peak)),
		kv("used_memory_peak_perc", fmt.Sprintf("%.2f%%", 100*float64(used)/float64(max(peak, 1)))),
		kv("go_heap_sys", utoa(ms.HeapSys)),
		kv("go_gc_count", utoa(uint64(ms.NumGC))),
		kv("used_memory_dataset", itoa(n.db.Table().Bytes())),
		kv("go_heap_alloc", utoa(ms.HeapAlloc)),
		// The heap's spans in use, free but still resident, and returned
		// to the OS: where a node's resident set goes beyond used_memory.
		kv("go_heap_inuse", utoa(ms.HeapInuse)),
		kv("go_heap_idle", utoa(ms.HeapIdle-ms.HeapReleased)),
		kv("go_heap_released", utoa(ms.HeapReleased)),
		kv("maxmemory", itoa(n.maxMemory.Load())),
		kv("maxmemory_human", bytesToHuman(uint64(n.maxMemory.Load()))),
		"maxmemory_policy:noeviction",
		kv("mem_fragmentation_ratio", fmt.Sprintf("%.2f", frag)),
		kv("mem_allocator", "go-"+runtime.Version()),
	}
}

func infoPersistence(n *Node) []string {
	first, last := n.wal.LogBounds()
	// Redis's snapshot fields describe the keyspace's checkpoint; its
	// append-only file's, the log.
	ck := n.checkpoint()
	writeStatus := "ok"
	if n.db.LogFailure() != nil {
		writeStatus = "err"
	}
	return []string{
		"loading:0",
		"async_loading:0",
		kv("rdb_changes_since_last_save", utoa(last-min(last, ck.Seq))),
		"rdb_bgsave_in_progress:0",
		kv("rdb_last_save_time", itoa(ck.At.Unix())),
		"rdb_last_bgsave_status:ok",
		"aof_enabled:1",
		"aof_rewrite_in_progress:0",
		"aof_rewrite_scheduled:0",
		"aof_last_bgrewrite_status:ok",
		kv("aof_last_write_status", writeStatus),
		kv("checkpoint_seq", utoa(ck.Seq)),
		kv("checkpoint_bytes", itoa(ck.Bytes)),
		kv("tombstones", itoa(n.tombstones())),
		kv("tombstones_collected", utoa(n.stats.collected.Load())),
		kv("appendfsync", string(n.wal.Fsync())),
		kv("wal_first_seq", utoa(first)),
		kv("wal_last_seq", utoa(last)),
		kv("wal_bytes", itoa(n.wal.LogBytes())),
		kv("disk_bytes", itoa(n.wal.DiskSize())),
		kv("hlc_last", n.clock.Last().String()),
	}
}

func infoStats(n *Node) []string {
	sum := n.counts()
	return []string{
		kv("total_connections_received", utoa(n.stats.connections.Load())),
		kv("total_commands_processed", utoa(sum.commands.Load())),
		kv("instantaneous_ops_per_sec", utoa(n.cmds.ops.perSecond())),
		kv("rejected_connections", utoa(n.cmds.rejectedConns.Load())),
		"sync_full:0",
		"sync_partial_ok:0",
		"sync_partial_err:0",
		kv("expired_keys", utoa(n.stats.expiredKeys.Load())),
		"evicted_keys:0",
		kv("keyspace_hits", utoa(sum.hits.Load())),
		kv("keyspace_misses", utoa(sum.misses.Load())),
		"pubsub_channels:0",
		"pubsub_patterns:0",
		"unexpected_error_replies:0",
		kv("total_error_replies", utoa(n.cmds.errTotal.Load())),
		kv("command_panics", utoa(n.stats.panics.Load())),
	}
}

// infoReplication: every node is a master of its own writes; the mesh, not
// Redis replication, carries them to the others, and its state follows the
// Redis fields (mesh_*).
func infoReplication(n *Node) []string {
	sum := sha1.Sum([]byte(n.peerID))
	_, last := n.wal.LogBounds()
	return append([]string{
		"role:master",
		"connected_slaves:0",
		"master_failover_state:no-failover",
		kv("master_replid", hex.EncodeToString(sum[:])),
		"master_replid2:0000000000000000000000000000000000000000",
		kv("master_repl_offset", utoa(last)),
		"second_repl_offset:-1",
		"repl_backlog_active:0",
	}, infoMesh(n)...)
}

func infoCPU(n *Node) []string {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	secs := func(tv syscall.Timeval) string {
		return fmt.Sprintf("%d.%06d", tv.Sec, tv.Usec)
	}
	return []string{
		kv("used_cpu_sys", secs(self.Stime)),
		kv("used_cpu_user", secs(self.Utime)),
		kv("used_cpu_sys_children", secs(children.Stime)),
		kv("used_cpu_user_children", secs(children.Utime)),
	}
}

func infoKeyspace(n *Node) []string {
	keys := n.db.KeyCount()
	if keys == 0 {
		return nil
	}
	return []string{fmt.Sprintf("db0:keys=%d,expires=%d,avg_ttl=%d", keys, n.db.ExpiresCount(), n.db.Table().AvgTTL(n.nowMillis()))}
}

// infoCommandstats: cmdstat_get:calls=..,usec=..,usec_per_call=..,
// rejected_calls=..,failed_calls=.., for every command called or rejected.
func infoCommandstats(n *Node) []string {
	var out []string
	for _, cs := range n.cmds.commands() {
		usec := cs.Time.Microseconds()
		perCall := 0.0
		if cs.Calls > 0 {
			perCall = float64(usec) / float64(cs.Calls)
		}
		out = append(out, fmt.Sprintf("cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d",
			cs.Name, cs.Calls, usec, perCall, cs.Rejected, cs.Failed))
	}
	return out
}

// infoErrorstats: errorstat_ERR:count=.., by prefix in byte order.
func infoErrorstats(n *Node) []string {
	kinds := n.cmds.errorKinds()
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]string, len(names))
	for i, k := range names {
		out[i] = fmt.Sprintf("errorstat_%s:count=%d", k, kinds[k])
	}
	return out
}

// latencyPercentiles are Redis's latency-tracking-info-percentiles default.
var latencyPercentiles = []float64{50, 99, 99.9}

// infoLatencystats: latency_percentiles_usec_get:p50=..,p99=..,p99.9=..
// in microseconds, for every command called; each is the upper bound of
// the histogram bucket it falls in (within 25%).
func infoLatencystats(n *Node) []string {
	var out []string
	for _, cs := range n.cmds.commands() {
		if cs.Calls == 0 {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "latency_percentiles_usec_%s:", cs.Name)
		for i, p := range latencyPercentiles {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "p%s=%.3f", strconv.FormatFloat(p, 'f', -1, 64), float64(cs.Percentile(p/100))/1e3)
		}
		out = append(out, b.String())
	}
	return out
}

// resetStats is CONFIG RESETSTAT.
func (n *Node) resetStats() {
	n.stats.connections.Store(0)
	n.stats.expiredKeys.Store(0)
	n.stats.countsMu.Lock()
	n.stats.closed.reset()
	n.clients.Range(func(_, v any) bool {
		v.(*client).counts.reset()
		return true
	})
	n.stats.countsMu.Unlock()
	n.stats.panics.Store(0)
	n.stats.memoryPeak.Store(0)
	n.cmds.reset()
}
