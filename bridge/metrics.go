package bridge

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the bridge's Prometheus metrics, read from its counters when
// scraped (the same numbers as INFO's Bridge section).
func (b *Bridge) Metrics() []prometheus.Collector {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "redmesh_bridge_" + name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "redmesh_bridge_" + name, Help: help}, f)
	}
	flag := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return []prometheus.Collector{
		gauge("up", "Whether the backend Redis answers.", func() float64 { return flag(b.up.Load()) }),
		gauge("owed_keys", "Keys whose node state the backend has yet to get.", func() float64 {
			b.mu.Lock()
			defer b.mu.Unlock()
			return float64(len(b.owed))
		}),
		gauge("sync_in_progress", "Whether a take-in or audit of the backend runs.", func() float64 { return flag(b.syncing.Load()) }),
		gauge("skipped_keys", "Keys the bridge could not read or carry, seen in the last take-in or audit.", func() float64 { return float64(b.takeIn.Skipped.Load()) }),
		counter("keys_written_total", "Keys written to the backend.", func() float64 { return float64(b.st.written.Load()) }),
		counter("keys_written_in_part_total", "Keys written to the backend by what changed only (of keys_written_total).", func() float64 { return float64(b.st.deltas.Load()) }),
		counter("changes_taken_in_total", "Changes made straight to the backend taken into the node.", func() float64 { return float64(b.st.takenIn.Load()) }),
		counter("lists_read_by_ends_total", "Lists changed in the backend by pushes and pops only, read from their ends rather than whole.", func() float64 { return float64(b.st.endReads.Load()) }),
		counter("echoes_ignored_total", "Notifications of the bridge's own writes, recognised.", func() float64 { return float64(b.st.echoes.Load()) }),
		counter("write_conflicts_total", "Writes refused by the backend's script because the key changed there first.", func() float64 { return float64(b.st.conflicts.Load()) }),
		counter("audits_total", "Take-ins and audits of the whole backend.", func() float64 { return float64(b.st.audits.Load()) }),
		counter("queue_overflows_total", "Times more keys were owed than the queue holds (an audit followed).", func() float64 { return float64(b.st.overflows.Load()) }),
	}
}
