package geohash

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Values redis-server 7.0 gives for the same points.
func TestKnownPoints(t *testing.T) {
	cases := []struct {
		long, lat float64
		score     float64
		hash      string
	}{
		{13.361389, 38.115556, 3479099956230698, "sqc8b49rny0"},
		{15.087269, 37.502669, 3479447370796909, "sqdtr74hyu0"},
		{180, 85.05112878, 13510798882111488, "bp05b5048p0"},
	}
	for _, c := range cases {
		if got := Score(c.long, c.lat); got != c.score {
			t.Errorf("Score(%v, %v) = %v, want %v", c.long, c.lat, got, c.score)
		}
		if got, _ := String(c.score); got != c.hash {
			t.Errorf("String(%v) = %q, want %q", c.score, got, c.hash)
		}
	}
	long, lat, _ := FromScore(3479099956230698)
	if long != 13.361389338970184 || lat != 38.1155563954963 {
		t.Errorf("FromScore = %v, %v", long, lat)
	}
	// Redis's GEODIST Palermo Catania km answers 166.2742.
	d := Distance(13.361389338970184, 38.1155563954963, 15.087267458438873, 37.50266842333162) / 1000
	if math.Abs(d-166.2742) > 0.00005 {
		t.Errorf("Distance = %v km", d)
	}
}

// A point decodes to the centre of its cell: within half a cell of where it
// was, and encoding the centre gives the same score.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cellLong := (LongMax - LongMin) / (1 << StepMax)
	cellLat := (LatMax - LatMin) / (1 << StepMax)
	for range 100000 {
		long := LongMin + rng.Float64()*(LongMax-LongMin)
		lat := LatMin + rng.Float64()*(LatMax-LatMin)
		score := Score(long, lat)
		if score < 0 || score >= 1<<52 {
			t.Fatalf("score %v of (%v, %v) is not 52 bits", score, long, lat)
		}
		l2, la2, ok := FromScore(score)
		if !ok || math.Abs(l2-long) > cellLong/2+1e-12 || math.Abs(la2-lat) > cellLat/2+1e-12 {
			t.Fatalf("(%v, %v) → %v → (%v, %v)", long, lat, score, l2, la2)
		}
		if Score(l2, la2) != score {
			t.Fatalf("centre of (%v, %v) scores %v, not %v", long, lat, Score(l2, la2), score)
		}
	}
}

// Every point within a search's radius lies in one of its cells (away from
// the poles and the antimeridian, where Redis's cells are known to fall
// short and this package does as Redis does).
func TestCellsCoverTheCircle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		s := Shape{Long: rng.Float64()*300 - 150, Lat: rng.Float64()*120 - 60, Radius: math.Pow(10, rng.Float64()*6), Conversion: 1}
		cells := s.Cells()
		for range 50 {
			// A point inside the circle.
			bearing := rng.Float64() * 2 * math.Pi
			frac := rng.Float64() * 0.99
			dLat := s.Radius * frac * math.Cos(bearing) / EarthRadius / degToRad
			dLong := s.Radius * frac * math.Sin(bearing) / EarthRadius / degToRad / math.Cos(s.Lat*degToRad)
			long, lat := s.Long+dLong, s.Lat+dLat
			if !Valid(long, lat) {
				continue
			}
			score := Score(long, lat)
			if _, _, _, in := s.Within(score); !in {
				continue
			}
			covered := false
			for _, c := range cells {
				if lo, hi := ScoreRange(c); !c.zero() && score >= lo && score < hi {
					covered = true
				}
			}
			if !covered {
				t.Fatalf("%+v: point (%v, %v) inside but in no cell", s, long, lat)
			}
		}
	}
}

func TestCUint64(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want uint64
	}{{1e20, 0}, {-1, math.MaxUint64}, {3, 3}, {1 << 63, 1 << 63}, {math.NaN(), 1 << 63}} {
		if got := cUint64(c.f); got != c.want {
			t.Errorf("cUint64(%v) = %#x, want %#x", c.f, got, c.want)
		}
	}
}
