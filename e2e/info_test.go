package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// infoLines returns the "name:value" lines of INFO sections, by name.
func infoLines(t *testing.T, addr, sections string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(redisCLI(t, addr, "INFO "+sections+"\n"), "\n") {
		l = strings.TrimRight(l, "\r")
		if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") {
			out[k] = v
		}
	}
	return out
}

// TestInfoStatsAsRedis runs the same commands against a real redis-server
// and a node, then compares INFO's commandstats, errorstats, latencystats
// and error counters: the same lines, the same counts, the same formats.
func TestInfoStatsAsRedis(t *testing.T) {
	redisAddr := startRedis(t)
	node := startNode(t, t.TempDir(), "--no-mesh")
	script := strings.Join([]string{
		"SET k v", "SET k v", "SET n 5",
		"GET k", "GET k", "GET missing",
		"INCR k",               // failed: not an integer
		"INCR n",               // ran
		"GET",                  // rejected: arity
		"GET a b",              // rejected: arity
		"SET k v NX XX",        // failed: syntax error
		"NOSUCHCOMMAND x",      // an error, no command's
		"EXEC",                 // failed: without MULTI
		"CONFIG GET port",      // a subcommand: config|get
		"CONFIG NOSUCH",        // an unknown subcommand
		"MULTI", "GET", "EXEC", // rejected inside MULTI, then EXECABORT
		"DEL k n",
	}, "\n") + "\n"
	for _, addr := range []string{redisAddr, node.addr} {
		// From nothing: the harness's client said hello its own way.
		redisCLI(t, addr, "CONFIG RESETSTAT\n")
		redisCLI(t, addr, script)
	}
	want := infoLines(t, redisAddr, "commandstats errorstats latencystats stats")
	got := infoLines(t, node.addr, "commandstats errorstats latencystats stats")

	cmdstat := regexp.MustCompile(`^calls=(\d+),usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=(\d+),failed_calls=(\d+)$`)
	latency := regexp.MustCompile(`^p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3}$`)
	n := 0
	for k, wv := range want {
		gv, ok := got[k]
		switch {
		case strings.HasPrefix(k, "cmdstat_"):
			n++
			wm, gm := cmdstat.FindStringSubmatch(wv), cmdstat.FindStringSubmatch(gv)
			if wm == nil {
				t.Fatalf("redis-server's %s:%s is not in the expected form", k, wv)
			}
			if !ok || gm == nil || gm[1] != wm[1] || gm[2] != wm[2] || gm[3] != wm[3] {
				t.Errorf("%s:%s, redis-server has %s", k, gv, wv)
			}
		case strings.HasPrefix(k, "errorstat_"), k == "total_error_replies", k == "rejected_connections", k == "total_commands_processed":
			n++
			if gv != wv {
				t.Errorf("%s:%s, redis-server has %s", k, gv, wv)
			}
		case strings.HasPrefix(k, "latency_percentiles_usec_"):
			n++
			if !latency.MatchString(wv) {
				t.Fatalf("redis-server's %s:%s is not in the expected form", k, wv)
			}
			if !ok || !latency.MatchString(gv) {
				t.Errorf("%s:%s, redis-server has %s", k, gv, wv)
			}
		case k == "instantaneous_ops_per_sec":
			if !regexp.MustCompile(`^\d+$`).MatchString(gv) {
				t.Errorf("%s:%s", k, gv)
			}
		}
	}
	for k, gv := range got {
		if strings.HasPrefix(k, "cmdstat_") || strings.HasPrefix(k, "errorstat_") || strings.HasPrefix(k, "latency_percentiles_usec_") {
			if _, ok := want[k]; !ok {
				t.Errorf("%s:%s, which redis-server does not have", k, gv)
			}
		}
	}
	if n < 15 {
		t.Fatalf("compared only %d lines:\n%v", n, want)
	}

	// CONFIG RESETSTAT clears them, as in Redis.
	redisCLI(t, node.addr, "CONFIG RESETSTAT\n")
	after := infoLines(t, node.addr, "commandstats errorstats stats")
	if after["total_error_replies"] != "0" || after["errorstat_ERR"] != "" || after["cmdstat_get"] != "" {
		t.Errorf("after CONFIG RESETSTAT: %v", after)
	}
}

// TestInfoLiveValues: instantaneous_ops_per_sec follows the load, and
// config_file names the file the node was started with.
func TestInfoLiveValues(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "redmesh.yaml")
	if err := os.WriteFile(conf, []byte("no-mesh: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startNode(t, filepath.Join(dir, "data"), "--config", conf)
	if got := infoFields(t, p, "server")["config_file"]; got != conf {
		t.Errorf("config_file:%s, want %s", got, conf)
	}
	c := p.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			c.Ping(ctx)
		}
	}()
	// One connection asks, one INFO per poll: about 20 commands a second.
	asker := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, PoolSize: 1})
	defer asker.Close()
	waitUntil(t, 10*time.Second, "instantaneous_ops_per_sec above 100", func() bool {
		v, _ := strconv.Atoi(infoOf(t, asker, "stats")["instantaneous_ops_per_sec"])
		return v > 100
	})
	cancel()
	waitUntil(t, 10*time.Second, "instantaneous_ops_per_sec to fall under 50 once idle", func() bool {
		v, _ := strconv.Atoi(infoOf(t, asker, "stats")["instantaneous_ops_per_sec"])
		return v < 50
	})
}

// TestRedisStyleSettings: yes/no, Redis's size units and plain seconds, on
// the command line as redis-server takes them.
func TestRedisStyleSettings(t *testing.T) {
	p := startNode(t, t.TempDir(), "--no-mesh", "--protected-mode", "no", "--timeout", "300", "--proto-max-bulk-len", "1mb", "--log-format", "json")
	c := p.client(t)
	for name, want := range map[string]string{"protected-mode": "no", "timeout": "300", "proto-max-bulk-len": "1048576"} {
		got, err := c.ConfigGet(context.Background(), name).Result()
		if err != nil || got[name] != want {
			t.Errorf("CONFIG GET %s = %v, %v; want %s", name, got, err, want)
		}
	}
	if !strings.Contains(p.out.String(), `"msg":"redmesh node started"`) {
		t.Errorf("--log-format json: the log is not JSON:\n%s", p.out)
	}
}
