package sim

import (
	"bytes"
	"fmt"
	"html"
	"math"
)

// SVG draws the report's series: divergent keys (left axis) and the bytes
// sent so far, all and metadata only (right axis), over virtual time, with
// the scenario's events as vertical lines. It is plain SVG, deterministic
// for a given report.
func (r *Report) SVG() []byte {
	const (
		w, h                     = 760, 380
		left, right, top, bottom = 70, 80, 40, 50
	)
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	var b bytes.Buffer
	f := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", w, h, w, h)
	f(`<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	title := fmt.Sprintf("redmesh sim: %s, %d nodes, %d keys, seed %d", r.Scenario, r.Config.Nodes, r.Config.Keys, r.Seed)
	f(`<text x="%d" y="20" font-size="13" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	s := r.Series
	var tmax float64 = 1
	var dmax float64 = 1
	var bmax float64 = 1
	for _, p := range s {
		tmax = math.Max(tmax, float64(p.TMillis)/1000)
		dmax = math.Max(dmax, float64(p.Divergent))
		bmax = math.Max(bmax, float64(p.Meta+p.Payload)/1e6)
	}
	tstep, dstep, bstep := niceStep(tmax), niceStep(dmax), niceStep(bmax)
	tmax, dmax, bmax = math.Ceil(tmax/tstep)*tstep, math.Ceil(dmax/dstep)*dstep, math.Ceil(bmax/bstep)*bstep
	x := func(t float64) float64 { return float64(left) + t/tmax*pw }
	yd := func(d float64) float64 { return float64(top) + ph - d/dmax*ph }
	yb := func(v float64) float64 { return float64(top) + ph - v/bmax*ph }
	// Axes and grid.
	f(`<g stroke="#ddd">`)
	for v := 0.0; v <= dmax+dstep/2; v += dstep {
		f(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, left, w-right, yd(v), yd(v))
	}
	f("</g>\n")
	f(`<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	for v := 0.0; v <= tmax+tstep/2; v += tstep {
		f(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(v), h-bottom+16, num(v))
	}
	f(`<text x="%.1f" y="%d" text-anchor="middle">virtual time (s)</text>`+"\n", float64(left)+pw/2, h-12)
	for v := 0.0; v <= dmax+dstep/2; v += dstep {
		f(`<text x="%d" y="%.1f" text-anchor="end" fill="#c0392b">%s</text>`, left-6, yd(v)+4, num(v))
	}
	f(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle" fill="#c0392b">divergent keys</text>`+"\n", float64(top)+ph/2)
	for v := 0.0; v <= bmax+bstep/2; v += bstep {
		f(`<text x="%d" y="%.1f" fill="#2e86c1">%s</text>`, w-right+6, yb(v)+4, num(v))
	}
	f(`<text transform="translate(%d %.1f) rotate(90)" text-anchor="middle" fill="#2e86c1">MB sent (all / metadata)</text>`+"\n", w-22, float64(top)+ph/2)
	// Scenario events.
	for i, m := range r.Timeline {
		xx := x(float64(m.TMillis) / 1000)
		f(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.0f" stroke="#888" stroke-dasharray="4 3"/>`, xx, xx, top, float64(top)+ph)
		f(`<text x="%.1f" y="%d" fill="#555">%s</text>`+"\n", xx+3, top+12+12*(i%3), html.EscapeString(m.What))
	}
	// Series.
	line := func(color, dash string, y func(Sample) float64) {
		if len(s) == 0 {
			return
		}
		f(`<polyline fill="none" stroke="%s" stroke-width="1.6"%s points="`, color, dash)
		for i, p := range s {
			if i > 0 {
				b.WriteByte(' ')
			}
			f("%.1f,%.1f", x(float64(p.TMillis)/1000), y(p))
		}
		f(`"/>` + "\n")
	}
	line("#2e86c1", "", func(p Sample) float64 { return yb(float64(p.Meta+p.Payload) / 1e6) })
	line("#2e86c1", ` stroke-dasharray="5 3"`, func(p Sample) float64 { return yb(float64(p.Meta) / 1e6) })
	line("#c0392b", "", func(p Sample) float64 { return yd(float64(p.Divergent)) })
	verdict := "converged"
	if !r.Pass {
		verdict = "FAILED"
	} else if r.Convergence.Converged {
		verdict = fmt.Sprintf("converged %.1f s after the last event", float64(r.Convergence.AfterMs)/1000)
	}
	f(`<text x="%d" y="%d" text-anchor="end" fill="#333">%s</text>`+"\n", w-right, top-8, html.EscapeString(verdict))
	f("</svg>\n")
	return b.Bytes()
}

// niceStep is a round tick spacing (1, 2 or 5 × 10^k) giving about 5 ticks.
func niceStep(max float64) float64 {
	raw := max / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
