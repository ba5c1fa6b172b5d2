// Package geohash is Redis's geo encoding: a point's longitude and latitude
// interleaved into a 52-bit integer that a sorted set keeps as the member's
// score, the areas a radius or box search scans, the distance formula, and
// the 11-character GEOHASH strings. Every step is Redis's, float operation
// for float operation, so that scores, search results and distances agree
// with redis-server's to the bit (pure; no IO).
//
// Written here rather than taken from a geohash library: Redis's scores use
// a latitude range of ±85.05112878, not the standard ±90, and its searches
// depend on its own step estimate and neighbour cells, which no Go library
// reproduces.
package geohash

import "math"

// Redis's limits (EPSG:900913): no point can be indexed nearer the poles.
const (
	LatMin  = -85.05112878
	LatMax  = 85.05112878
	LongMin = -180.0
	LongMax = 180.0
	// StepMax is the precision of a stored score: 26 bits per coordinate.
	StepMax = 26
)

// EarthRadius is the radius Redis's distances use, in metres.
const EarthRadius = 6372797.560856

// mercatorMax bounds the step estimate (Redis's MERCATOR_MAX).
const mercatorMax = 20037726.37

// degToRad is Redis's D_R, M_PI/180 computed in double precision (a Go
// constant expression would be exact, and differ in the last bit).
var degToRad = func() float64 { pi := math.Pi; return pi / 180.0 }()

// Range is an interval of one coordinate.
type Range struct{ Min, Max float64 }

// Redis's own ranges, and the standard ones GEOHASH strings are made in.
var (
	redisLong = Range{LongMin, LongMax}
	redisLat  = Range{LatMin, LatMax}
	stdLat    = Range{-90, 90}
)

// Bits is a geohash of Step bits per coordinate: latitude in the even
// bits, longitude in the odd ones.
type Bits struct {
	Bits uint64
	Step uint8
}

func (b Bits) zero() bool { return b.Bits == 0 && b.Step == 0 }

// Area is the cell a hash names.
type Area struct {
	Hash      Bits
	Long, Lat Range
}

// spread moves the low 32 bits of v to the even bits of the result.
func spread(v uint64) uint64 {
	v &= 0xFFFFFFFF
	v = (v | v<<16) & 0x0000FFFF0000FFFF
	v = (v | v<<8) & 0x00FF00FF00FF00FF
	v = (v | v<<4) & 0x0F0F0F0F0F0F0F0F
	v = (v | v<<2) & 0x3333333333333333
	v = (v | v<<1) & 0x5555555555555555
	return v
}

// squeeze is spread's inverse: the even bits of v, packed.
func squeeze(v uint64) uint64 {
	v &= 0x5555555555555555
	v = (v | v>>1) & 0x3333333333333333
	v = (v | v>>2) & 0x0F0F0F0F0F0F0F0F
	v = (v | v>>4) & 0x00FF00FF00FF00FF
	v = (v | v>>8) & 0x0000FFFF0000FFFF
	v = (v | v>>16) & 0x00000000FFFFFFFF
	return v
}

// Valid reports whether Redis accepts the point (GEOADD's check).
func Valid(long, lat float64) bool {
	return long >= LongMin && long <= LongMax && lat >= LatMin && lat <= LatMax
}

// encode is Redis's geohashEncode over the given ranges.
func encode(longR, latR Range, long, lat float64, step uint8) (Bits, bool) {
	if step == 0 || step > 32 || !Valid(long, lat) {
		return Bits{}, false
	}
	if lat < latR.Min || lat > latR.Max || long < longR.Min || long > longR.Max {
		return Bits{}, false
	}
	latOff := (lat - latR.Min) / (latR.Max - latR.Min)
	longOff := (long - longR.Min) / (longR.Max - longR.Min)
	scale := float64(uint64(1) << step)
	latOff = float64(latOff * scale)
	longOff = float64(longOff * scale)
	// C converts the offsets to uint32_t, truncating; an offset of exactly
	// 1 (the range's maximum) gives 2^step, one past the last cell, as in
	// Redis.
	return Bits{Bits: spread(uint64(uint32(latOff))) | spread(uint64(uint32(longOff)))<<1, Step: step}, true
}

// Encode hashes a point at step bits per coordinate in Redis's ranges.
func Encode(long, lat float64, step uint8) (Bits, bool) {
	return encode(redisLong, redisLat, long, lat, step)
}

// Score is the sorted-set score GEOADD stores for a point (which must be
// Valid).
func Score(long, lat float64) float64 {
	b, _ := Encode(long, lat, StepMax)
	return float64(Align52(b))
}

// Align52 shifts a hash to 52 bits, the width of a score.
func Align52(b Bits) uint64 { return b.Bits << (52 - 2*uint(b.Step)) }

// decode is Redis's geohashDecode: the cell hash names in the given ranges.
func decode(longR, latR Range, h Bits) (Area, bool) {
	if h.zero() {
		return Area{}, false
	}
	latScale := latR.Max - latR.Min
	longScale := longR.Max - longR.Min
	ilat := uint32(squeeze(h.Bits))
	ilong := uint32(squeeze(h.Bits >> 1))
	cells := float64(uint64(1) << h.Step)
	a := Area{Hash: h}
	a.Lat.Min = latR.Min + float64(float64(ilat)/cells*latScale)
	a.Lat.Max = latR.Min + float64(float64(ilat+1)/cells*latScale) // uint32 wraps, as C's
	a.Long.Min = longR.Min + float64(float64(ilong)/cells*longScale)
	a.Long.Max = longR.Min + float64(float64(ilong+1)/cells*longScale)
	return a, true
}

// Decode is the cell h names in Redis's ranges.
func Decode(h Bits) (Area, bool) { return decode(redisLong, redisLat, h) }

// Center is the middle of a cell, within Redis's limits.
func (a Area) Center() (long, lat float64) {
	long = (a.Long.Min + a.Long.Max) / 2
	long = min(max(long, LongMin), LongMax)
	lat = (a.Lat.Min + a.Lat.Max) / 2
	lat = min(max(lat, LatMin), LatMax)
	return long, lat
}

// FromScore is the point a score stands for (the centre of its cell), as
// GEOPOS answers it. Like Redis, it converts the score to an integer as C
// does, whatever the score.
func FromScore(score float64) (long, lat float64, ok bool) {
	a, ok := Decode(Bits{Bits: cUint64(score), Step: StepMax})
	if !ok {
		return 0, 0, false
	}
	long, lat = a.Center()
	return long, lat, true
}

// cUint64 converts as C's (uint64_t) cast compiles on x86-64, whose
// results for values out of range Redis's replies show: a score that is
// not a geohash still decodes to some point, the same as Redis's.
func cUint64(f float64) uint64 {
	const two63 = 1 << 63
	toInt64 := func(f float64) int64 {
		if !(f >= -two63 && f < two63) {
			return math.MinInt64 // the processor's "indefinite integer"
		}
		return int64(f)
	}
	if !(f >= two63) { // NaN too: an unordered compare takes this branch
		return uint64(toInt64(f))
	}
	return uint64(toInt64(f-two63)) ^ (1 << 63)
}

const geoAlphabet = "0123456789bcdefghjkmnpqrstuvwxyz"

// String is GEOHASH's answer for a score: the point re-encoded in the
// standard latitude range, 11 characters of which the last stands for bits
// a score does not have (always '0', as in Redis).
func String(score float64) (string, bool) {
	long, lat, ok := FromScore(score)
	if !ok {
		return "", false
	}
	h, _ := encode(redisLong, stdLat, long, lat, StepMax)
	var buf [11]byte
	for i := range 10 {
		buf[i] = geoAlphabet[(h.Bits>>(52-(uint(i)+1)*5))&0x1f]
	}
	buf[10] = geoAlphabet[0]
	return string(buf[:]), true
}

// move shifts a hash one cell along one axis (d: -1, 0, +1): the odd bits
// (longitude) for x, the even bits (latitude) for y.
func move(h *Bits, d int, xAxis bool) {
	if d == 0 {
		return
	}
	const odd, even = 0xaaaaaaaaaaaaaaaa, 0x5555555555555555
	x, y := h.Bits&odd, h.Bits&even
	width := 64 - uint(h.Step)*2
	if xAxis {
		zz := uint64(even) >> width
		if d > 0 {
			x += zz + 1
		} else {
			x |= zz
			x -= zz + 1
		}
		x &= uint64(odd) >> width
	} else {
		zz := uint64(odd) >> width
		if d > 0 {
			y += zz + 1
		} else {
			y |= zz
			y -= zz + 1
		}
		y &= uint64(even) >> width
	}
	h.Bits = x | y
}

func neighbour(h Bits, dx, dy int) Bits {
	move(&h, dx, true)
	move(&h, dy, false)
	return h
}

// Distance is Redis's haversine distance in metres between two points.
func Distance(long1, lat1, long2, lat2 float64) float64 {
	lon1r := long1 * degToRad
	lon2r := long2 * degToRad
	v := sin((lon2r - lon1r) / 2)
	if v == 0 {
		return latDistance(lat1, lat2)
	}
	lat1r := lat1 * degToRad
	lat2r := lat2 * degToRad
	u := sin((lat2r - lat1r) / 2)
	a := float64(u*u) + float64(float64(cos(lat1r)*cos(lat2r))*v*v)
	return 2.0 * EarthRadius * asin(math.Sqrt(a))
}

// latDistance is the distance along a meridian.
func latDistance(lat1, lat2 float64) float64 {
	return EarthRadius * math.Abs(lat2*degToRad-lat1*degToRad)
}

// Shape is a search: a circle of Radius, or a box of Width by Height, in
// the unit of Conversion metres, around (Long, Lat).
type Shape struct {
	Long, Lat     float64
	Box           bool
	Radius        float64
	Width, Height float64
	Conversion    float64
}

// Within reports whether the point a score stands for is inside the shape,
// its coordinates and its distance from the centre in metres.
func (s Shape) Within(score float64) (long, lat, dist float64, ok bool) {
	long, lat, ok = FromScore(score)
	if !ok {
		return 0, 0, 0, false
	}
	if !s.Box {
		dist = Distance(s.Long, s.Lat, long, lat)
		return long, lat, dist, dist <= s.Radius*s.Conversion
	}
	w, h := s.Width*s.Conversion, s.Height*s.Conversion
	if latDistance(lat, s.Lat) > h/2 {
		return long, lat, 0, false
	}
	if Distance(long, lat, s.Long, lat) > w/2 {
		return long, lat, 0, false
	}
	return long, lat, Distance(s.Long, s.Lat, long, lat), true
}

// bounds is the shape's bounding box: min long, min lat, max long, max lat.
func (s Shape) bounds() [4]float64 {
	height, width := s.Conversion*s.Radius, s.Conversion*s.Radius
	if s.Box {
		height, width = s.Conversion*(s.Height/2), s.Conversion*(s.Width/2)
	}
	latDelta := height / EarthRadius / degToRad
	longTop := width / EarthRadius / cos((s.Lat+latDelta)*degToRad) / degToRad
	longBottom := width / EarthRadius / cos((s.Lat-latDelta)*degToRad) / degToRad
	// Towards the pole the box is narrower: the far edge bounds it.
	longDelta := longTop
	if s.Lat < 0 {
		longDelta = longBottom
	}
	return [4]float64{s.Long - longDelta, s.Lat - latDelta, s.Long + longDelta, s.Lat + latDelta}
}

// estimateSteps is the step whose cells are about as large as the search.
func estimateSteps(meters, lat float64) uint8 {
	if meters == 0 {
		return 26
	}
	step := 1
	for meters < mercatorMax {
		meters *= 2
		step++
	}
	step -= 2
	if lat > 66 || lat < -66 {
		step--
		if lat > 80 || lat < -80 {
			step--
		}
	}
	return uint8(min(max(step, 1), 26))
}

// Cells are the cells a search scans, in Redis's order: the centre, north,
// south, east, west, north-east, north-west, south-east, south-west. A
// zero Bits is a cell left out.
func (s Shape) Cells() [9]Bits {
	b := s.bounds()
	meters := s.Radius
	if s.Box {
		meters = math.Sqrt(float64((s.Width/2)*(s.Width/2)) + float64((s.Height/2)*(s.Height/2)))
	}
	meters *= s.Conversion
	steps := estimateSteps(meters, s.Lat)
	hash, _ := Encode(s.Long, s.Lat, steps)
	n := neighbours(hash)
	area, _ := Decode(hash)

	// Near a cell's edge the estimated step may leave part of the search
	// outside the nine cells: one step coarser then.
	north, _ := Decode(n[1])
	south, _ := Decode(n[2])
	east, _ := Decode(n[3])
	west, _ := Decode(n[4])
	if steps > 1 && (north.Lat.Max < b[3] || south.Lat.Min > b[1] || east.Long.Max < b[2] || west.Long.Min > b[0]) {
		steps--
		hash, _ = Encode(s.Long, s.Lat, steps)
		n = neighbours(hash)
		area, _ = Decode(hash)
	}
	if steps >= 2 {
		if area.Lat.Min < b[1] {
			n[2], n[8], n[7] = Bits{}, Bits{}, Bits{}
		}
		if area.Lat.Max > b[3] {
			n[1], n[5], n[6] = Bits{}, Bits{}, Bits{}
		}
		if area.Long.Min < b[0] {
			n[4], n[8], n[6] = Bits{}, Bits{}, Bits{}
		}
		if area.Long.Max > b[2] {
			n[3], n[7], n[5] = Bits{}, Bits{}, Bits{}
		}
	}
	return n
}

// neighbours is the cell and its eight neighbours in Cells's order.
func neighbours(h Bits) [9]Bits {
	return [9]Bits{
		h,
		neighbour(h, 0, 1),   // north
		neighbour(h, 0, -1),  // south
		neighbour(h, 1, 0),   // east
		neighbour(h, -1, 0),  // west
		neighbour(h, 1, 1),   // north-east
		neighbour(h, -1, 1),  // north-west
		neighbour(h, 1, -1),  // south-east
		neighbour(h, -1, -1), // south-west
	}
}

// ScoreRange is the scores [min, max) of the points inside a cell.
func ScoreRange(h Bits) (lo, hi float64) {
	lo = float64(Align52(h))
	h.Bits++
	return lo, float64(Align52(h))
}
