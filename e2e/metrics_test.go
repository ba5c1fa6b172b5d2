package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
)

// scrape fetches and parses /metrics with Prometheus's own text parser.
func scrape(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue is the value of the family's sample whose labels include
// labels (name, value pairs); ok is false without one.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// httpGet returns the status code and body of a GET, or 0 if nothing
// answered.
func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// infoFields runs INFO section on a new connection and returns its fields.
func infoFields(t testing.TB, p *proc, section string) map[string]string {
	t.Helper()
	return infoOf(t, p.client(t), section)
}

// infoOf runs INFO section through c and returns its fields.
func infoOf(t testing.TB, c *redis.Client, section string) map[string]string {
	t.Helper()
	s, err := c.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatalf("INFO %s: %v", section, err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// TestMetricsAfterWorkload: after a known workload, /metrics (parsed with
// Prometheus's parser) counts what was done and agrees with INFO.
func TestMetricsAfterWorkload(t *testing.T) {
	ctx := context.Background()
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startNode(t, t.TempDir(), "--no-mesh", "--metrics-listen", maddr)
	c := p.client(t)
	for i := range 100 {
		if err := c.Set(ctx, fmt.Sprint("k", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if err := c.Set(ctx, fmt.Sprint("ttl", i), "v", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 { // 5 tombstones
		if err := c.Set(ctx, fmt.Sprint("gone", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Del(ctx, fmt.Sprint("gone", i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 { // 50 hits, 10 misses
		c.Get(ctx, fmt.Sprint("k", i+50))
	}
	for range 5 { // ERR: not an integer
		if err := c.Incr(ctx, "k1").Err(); err == nil {
			t.Fatal("INCR of a non-integer succeeded")
		}
	}
	for range 3 { // ERR: unknown command, counted by kind only
		c.Do(ctx, "NOSUCHCOMMAND", "x")
	}
	for range 2 { // rejected: wrong arity
		c.Do(ctx, "GET")
	}

	fams := scrape(t, maddr)
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"redmesh_commands_total", []string{"cmd", "set"}, 115},
		{"redmesh_commands_total", []string{"cmd", "del"}, 5},
		{"redmesh_commands_total", []string{"cmd", "get"}, 60},
		{"redmesh_command_duration_seconds", []string{"cmd", "get"}, 60},
		{"redmesh_commands_failed_total", []string{"cmd", "incr"}, 5},
		{"redmesh_commands_rejected_total", []string{"cmd", "get"}, 2},
		{"redmesh_errors_total", []string{"kind", "ERR"}, 10},
		{"redmesh_error_replies_total", nil, 10},
		{"redmesh_keys", nil, 110},
		{"redmesh_expiring_keys", nil, 10},
		{"redmesh_keyspace_hits_total", nil, 50},
		{"redmesh_keyspace_misses_total", nil, 10},
		{"redmesh_ready", nil, 1},
	}
	for _, w := range want {
		got, ok := metricValue(fams, w.name, w.labels...)
		if !ok || got != w.value {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	// A node alone collects its tombstones once they are stable, which a
	// slow run reaches: each of the 5 is kept or collected. The two are
	// read one after the other, so a collection between them shows in
	// neither or both: read again until a scrape falls between two.
	waitUntil(t, 10*time.Second, "the 5 tombstones kept or collected", func() bool {
		f := scrape(t, maddr)
		kept, ok1 := metricValue(f, "redmesh_tombstones")
		gone, ok2 := metricValue(f, "redmesh_tombstones_collected_total")
		return ok1 && ok2 && kept+gone == 5
	})
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "redmesh_log_head_seq", "redmesh_log_bytes", "redmesh_clock_skew_refused_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if f := fams["redmesh_command_duration_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("redmesh_command_duration_seconds is not a histogram: %v", f)
	}

	// The same numbers as INFO, which counts itself too: scrape again
	// right after, and compare what neither changes.
	info := infoFields(t, p, "everything")
	before := time.Now()
	fams = scrape(t, maddr)
	after := time.Now()
	for field, metric := range map[string]string{
		"keyspace_hits":              "redmesh_keyspace_hits_total",
		"keyspace_misses":            "redmesh_keyspace_misses_total",
		"wal_last_seq":               "redmesh_log_head_seq",
		"wal_first_seq":              "redmesh_log_first_seq",
		"mesh_refused_clock_skew":    "redmesh_clock_skew_refused_total",
		"expired_keys":               "redmesh_expired_keys_total",
		"connected_clients":          "redmesh_connected_clients",
		"total_connections_received": "redmesh_connections_received_total",
		"wal_bytes":                  "redmesh_log_bytes",
		"checkpoint_bytes":           "redmesh_checkpoint_bytes",
	} {
		iv, err := strconv.ParseFloat(info[field], 64)
		if err != nil {
			t.Errorf("INFO %s = %q", field, info[field])
			continue
		}
		if mv, ok := metricValue(fams, metric); !ok || mv != iv {
			t.Errorf("%s = %v, INFO %s = %v", metric, mv, field, iv)
		}
	}
	// Tombstones kept and collected: each moves from one to the other
	// between INFO and the scrape, their sum not.
	kept, _ := strconv.Atoi(info["tombstones"])
	gone, _ := strconv.Atoi(info["tombstones_collected"])
	mk, _ := metricValue(fams, "redmesh_tombstones")
	mg, _ := metricValue(fams, "redmesh_tombstones_collected_total")
	if kept+gone != 5 || mk+mg != 5 {
		t.Errorf("tombstones kept + collected: INFO %d + %d, metrics %v + %v; want 5", kept, gone, mk, mg)
	}
	// The checkpoint's age is the time since INFO's rdb_last_save_time
	// (whole seconds): the node's start while none was written, or the
	// checkpoint the checkpointer writes at its first tick after a write
	// when there is none (a slow run reaches it before this scrape).
	age, ok := metricValue(fams, "redmesh_checkpoint_age_seconds")
	saved, _ := strconv.ParseInt(info["rdb_last_save_time"], 10, 64)
	lo := before.Sub(time.Unix(saved+1, 0)).Seconds()
	hi := after.Sub(time.Unix(saved, 0)).Seconds()
	if !ok || age < lo || age > hi {
		t.Errorf("redmesh_checkpoint_age_seconds = %v (present %v), want between %v and %v (INFO rdb_last_save_time %d)", age, ok, lo, hi, saved)
	}
	// None written: the age is the node's, at least the uptime INFO gave.
	if uptime, _ := strconv.ParseFloat(info["uptime_in_seconds"], 64); info["checkpoint_bytes"] == "0" && age < uptime {
		t.Errorf("no checkpoint, yet redmesh_checkpoint_age_seconds = %v < INFO uptime_in_seconds %v", age, uptime)
	}
	if !strings.HasPrefix(info["db0"], "keys=110,expires=10,") {
		t.Errorf("INFO keyspace db0 = %q, want keys=110,expires=10", info["db0"])
	}
	if code, body := httpGet("http://" + maddr + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
}

// TestReadyzWaitsForFirstSync: a node given a peer is alive but not ready
// until it has synced with it; a node without peers is ready once serving.
func TestReadyzWaitsForFirstSync(t *testing.T) {
	aDir := t.TempDir()
	aID := peerID(t, aDir)
	aPort := freePort(t)
	aAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", aPort, aID)

	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := startMeshNode(t, t.TempDir(), 0, "--peer", aAddr, "--metrics-listen", maddr)
	if code, body := httpGet("http://" + maddr + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	// b is serving but its peer is down: not ready, and it says why.
	if code, body := httpGet("http://" + maddr + "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "sync") {
		t.Fatalf("/readyz with its peer down = %d %q, want 503", code, body)
	}
	if v, _ := metricValue(scrape(t, maddr), "redmesh_ready"); v != 0 {
		t.Fatalf("redmesh_ready = %v before any sync", v)
	}

	a := startMeshNode(t, aDir, aPort)
	waitConnected(t, 1, a, b)
	waitUntil(t, 30*time.Second, "/readyz to turn 200", func() bool {
		code, _ := httpGet("http://" + maddr + "/readyz")
		return code == http.StatusOK
	})
	if v, _ := metricValue(scrape(t, maddr), "redmesh_peer_connected", "peer", aID); v != 1 {
		t.Fatalf("redmesh_peer_connected{peer=%s} = %v", aID, v)
	}

	// A node with no peer at all is ready as soon as it serves.
	lone := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startNode(t, t.TempDir(), "--no-mesh", "--metrics-listen", lone)
	if code, body := httpGet("http://" + lone + "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz of a lone node = %d %q", code, body)
	}
}
