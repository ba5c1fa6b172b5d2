package sim

import (
	"testing"
	"time"
)

// msHist's quantiles are the smallest durations at or below which the
// share lies, at a millisecond's resolution; beyond a minute counts as a
// minute, below zero as zero.
func TestMsHistQuantile(t *testing.T) {
	var h msHist
	if got := h.quantile(0.5); got != 0 {
		t.Fatalf("empty: %d", got)
	}
	for ms := 1; ms <= 100; ms++ {
		h.add(int64(ms)*int64(time.Millisecond) + int64(time.Microsecond))
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := h.quantile(c.q); got != c.want {
			t.Errorf("q %v: %d ms, want %d", c.q, got, c.want)
		}
	}
	h.add(int64(2 * time.Hour))
	h.add(-5)
	if got := h.quantile(1); got != 60_000 {
		t.Errorf("the longest: %d ms, want a minute", got)
	}
	if got := h.quantile(0.001); got != 0 {
		t.Errorf("the shortest: %d ms, want 0", got)
	}
}
