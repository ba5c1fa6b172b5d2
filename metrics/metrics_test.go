package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/redmesh/redmesh/gossip"
	"github.com/redmesh/redmesh/node"
)

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"9121":           "127.0.0.1:9121",
		":9121":          ":9121",
		"0.0.0.0:9121":   "0.0.0.0:9121",
		"[::1]:9121":     "[::1]:9121",
		"localhost:9121": "localhost:9121",
	} {
		if got, err := ListenAddr(in); err != nil || got != want {
			t.Errorf("ListenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "99999", "host", "a:b:c"} {
		if got, err := ListenAddr(bad); err == nil {
			t.Errorf("ListenAddr(%q) = %q, want an error", bad, got)
		}
	}
}

// TestDashboardNamesExist: every metric the Grafana dashboard queries is
// one this package (or Go's and the process's collectors) exports.
func TestDashboardNamesExist(t *testing.T) {
	b, err := os.ReadFile("../ops/grafana/redmesh.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	known := map[string]bool{}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	ch := make(chan *prometheus.Desc, 1000)
	(&collector{}).Describe(ch)
	collectors.NewGoCollector().Describe(ch)
	collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}).Describe(ch)
	close(ch)
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			known[m[1]] = true
			known[m[1]+"_bucket"] = true // histograms
		}
	}
	name := regexp.MustCompile(`\b(?:redmesh|go|process)_[a-z_]+`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				n++
				if !known[m] {
					t.Errorf("the dashboard queries %s, which nothing exports (%s)", m, tg.Expr)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d metric names in the dashboard", n)
	}
}

// TestMeshPushCounters: the relayed, relay-dropped and held pushes INFO
// counts are exported, each from its own field.
func TestMeshPushCounters(t *testing.T) {
	c := &collector{
		stats: func() (node.Stats, bool) {
			return node.Stats{Mesh: &gossip.Info{PushReceived: 7, PushRelayed: 5, PushRelayDropped: 3, PushHeld: 2}}, true
		},
		ready: func() bool { return true },
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetCounter() != nil {
			got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"redmesh_push_records_received_total": 7,
		"redmesh_push_relayed_total":          5,
		"redmesh_push_relay_dropped_total":    3,
		"redmesh_push_held_total":             2,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}
