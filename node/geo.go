package node

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/redmesh/redmesh/geohash"
	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/longdouble"
	"github.com/redmesh/redmesh/record"
)

// Geo commands. A geo key is a sorted set whose scores are 52-bit geohashes
// (package geohash): GEOADD is a ZADD of those scores, so geo members merge
// as sorted-set members do, and the searches read the set's score index
// cell by cell as Redis does, in Redis's order and with its distances.

const (
	errGeoUnit     = "ERR unsupported unit provided. please use M, KM, FT, MI"
	errGeoNoMember = "ERR could not decode requested zset member"
)

// cmdGeoAdd is GEOADD key [NX|XX] [CH] longitude latitude member ...
func cmdGeoAdd(n *Node, c *client, args [][]byte) {
	var f zaddFlags
	i := 2
	for ; i < len(args); i++ {
		switch {
		case equalFold(args[i], "nx"):
			f.nx = true
		case equalFold(args[i], "xx"):
			f.xx = true
		case equalFold(args[i], "ch"):
			f.ch = true
		default:
			goto points
		}
	}
points:
	rest := args[i:]
	if len(rest)%3 != 0 || len(rest) == 0 || f.nx && f.xx {
		c.w.WriteError(errSyntax)
		return
	}
	pairs := make([][]byte, 0, len(rest)/3*2)
	for j := 0; j < len(rest); j += 3 {
		long, lat, err := parseLongLat(rest[j], rest[j+1])
		if err != nil {
			c.writeErr(err)
			return
		}
		score := strconv.FormatUint(uint64(geohash.Score(long, lat)), 10)
		pairs = append(pairs, []byte(score), rest[j+2])
	}
	zadd(n, c, args[1], f, pairs)
}

// parseLongLat reads a point as Redis's extractLongLatOrReply does.
func parseLongLat(longArg, latArg []byte) (long, lat float64, err error) {
	var ok bool
	if long, ok = parseScore(longArg); !ok {
		return 0, 0, replyErr(errNotFloat)
	}
	if lat, ok = parseScore(latArg); !ok {
		return 0, 0, replyErr(errNotFloat)
	}
	if !geohash.Valid(long, lat) {
		return 0, 0, replyErr("ERR invalid longitude,latitude pair " + cFixed6(long) + "," + cFixed6(lat))
	}
	return long, lat, nil
}

// cFixed6 is C's "%f".
func cFixed6(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'f', 6, 64)
}

// geoUnit is metres per unit, or an error.
func geoUnit(b []byte) (float64, error) {
	switch strings.ToLower(string(b)) {
	case "m":
		return 1, nil
	case "km":
		return 1000, nil
	case "ft":
		return 0.3048, nil
	case "mi":
		return 1609.34, nil
	}
	return 0, replyErr(errGeoUnit)
}

// formatDistance is a distance as Redis answers it: rounded (to even, as
// llrint) to four decimals.
func formatDistance(d float64) string {
	if d == 0 {
		return "0.0000"
	}
	v := int64(math.RoundToEven(float64(d * 10000)))
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	s := strconv.FormatUint(u, 10)
	if len(s) < 5 {
		s = strings.Repeat("0", 5-len(s)) + s
	}
	s = s[:len(s)-4] + "." + s[len(s)-4:]
	if neg {
		s = "-" + s
	}
	return s
}

// humanDouble is a coordinate as Redis answers it: "%.17Lf" of the value,
// trailing zeros dropped.
func humanDouble(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return longdouble.Human(strconv.FormatFloat(f, 'f', 17, 64))
}

func cmdGeoPos(n *Node, c *client, args [][]byte) {
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteArray(len(args) - 2)
	for _, m := range args[2:] {
		score, ok := z.Score(m)
		var long, lat float64
		if ok {
			long, lat, ok = geohash.FromScore(score)
		}
		if !ok {
			c.w.WriteRaw([]byte("*-1\r\n"))
			continue
		}
		c.w.WriteArray(2)
		c.w.WriteBulkString(humanDouble(long))
		c.w.WriteBulkString(humanDouble(lat))
	}
}

func cmdGeoHash(n *Node, c *client, args [][]byte) {
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteArray(len(args) - 2)
	for _, m := range args[2:] {
		score, ok := z.Score(m)
		var s string
		if ok {
			s, ok = geohash.String(score)
		}
		if !ok {
			c.w.WriteNull()
			continue
		}
		c.w.WriteBulkString(s)
	}
}

// cmdGeoDist is GEODIST key member1 member2 [unit].
func cmdGeoDist(n *Node, c *client, args [][]byte) {
	toMeters := 1.0
	switch {
	case len(args) == 5:
		var err error
		if toMeters, err = geoUnit(args[4]); err != nil {
			c.writeErr(err)
			return
		}
	case len(args) > 5:
		c.w.WriteError(errSyntax)
		return
	}
	z, err := c.readKind(args[1], record.KindZSet)
	if err != nil {
		c.writeErr(err)
		return
	}
	s1, ok1 := z.Score(args[2])
	s2, ok2 := z.Score(args[3])
	if !ok1 || !ok2 {
		c.w.WriteNull()
		return
	}
	long1, lat1, ok1 := geohash.FromScore(s1)
	long2, lat2, ok2 := geohash.FromScore(s2)
	if !ok1 || !ok2 {
		c.w.WriteNull()
		return
	}
	c.w.WriteBulkString(formatDistance(geohash.Distance(long1, lat1, long2, lat2) / toMeters))
}

// geoFlags says which of the search commands runs.
type geoFlags int

const (
	geoFromCoords  geoFlags = 1 << iota // GEORADIUS: around a point
	geoFromMember                       // GEORADIUSBYMEMBER: around a member
	geoNoStore                          // the _RO forms: no STORE
	geoSearch                           // GEOSEARCH's arguments
	geoSearchStore                      // GEOSEARCHSTORE
)

const (
	geoSortNone = iota
	geoSortAsc
	geoSortDesc
)

// geoQuery is a parsed search.
type geoQuery struct {
	shape                         geohash.Shape
	withDist, withHash, withCoord bool
	sort                          int
	any                           bool
	count                         int64 // 0: no limit
	store                         []byte
	storeDist                     bool
}

// parseGeoQuery reads a search's arguments in Redis's order, checking them
// against the source set z (nil: no such key) as it goes, so that errors
// come in the order Redis gives them.
func parseGeoQuery(args [][]byte, flags geoFlags, z *record.Typed) (geoQuery, error) {
	var q geoQuery
	var base int
	switch {
	case flags&geoFromCoords != 0:
		base = 6
		long, lat, err := parseLongLat(args[2], args[3])
		if err != nil {
			return q, err
		}
		q.shape.Long, q.shape.Lat = long, lat
		if err := parseRadius(args[4:6], &q.shape); err != nil {
			return q, err
		}
	case flags&geoFromMember != 0 && z == nil:
		base = 5 // nothing to search: the options only decide the reply
	case flags&geoFromMember != 0:
		base = 5
		if !memberPoint(z, args[2], &q.shape) {
			return q, replyErr(errGeoNoMember)
		}
		if err := parseRadius(args[3:5], &q.shape); err != nil {
			return q, err
		}
	default:
		base = 2
		if flags&geoSearchStore != 0 {
			base = 3
			q.store = args[1]
		}
	}
	search := flags&geoSearch != 0
	canStore := flags&geoNoStore == 0 && !search
	var fromMember, fromLoc, byRadius, byBox bool
	rest := args[base:]
	for i := 0; i < len(rest); i++ {
		left := len(rest) - i - 1
		a := rest[i]
		switch {
		case equalFold(a, "withdist"):
			q.withDist = true
		case equalFold(a, "withhash"):
			q.withHash = true
		case equalFold(a, "withcoord"):
			q.withCoord = true
		case equalFold(a, "any"):
			q.any = true
		case equalFold(a, "asc"):
			q.sort = geoSortAsc
		case equalFold(a, "desc"):
			q.sort = geoSortDesc
		case equalFold(a, "count") && left >= 1:
			v, ok := parseInt(rest[i+1])
			if !ok {
				return q, replyErr(errNotInteger)
			}
			if v <= 0 {
				return q, replyErr("ERR COUNT must be > 0")
			}
			q.count = v
			i++
		case canStore && left >= 1 && (equalFold(a, "store") || equalFold(a, "storedist")):
			q.store, q.storeDist = rest[i+1], equalFold(a, "storedist")
			i++
		case flags&geoSearchStore != 0 && equalFold(a, "storedist"):
			q.storeDist = true
		case search && !fromLoc && left >= 1 && equalFold(a, "frommember"):
			if z != nil && !memberPoint(z, rest[i+1], &q.shape) {
				return q, replyErr(errGeoNoMember)
			}
			fromMember = true
			i++
		case search && !fromMember && left >= 2 && equalFold(a, "fromlonlat"):
			long, lat, err := parseLongLat(rest[i+1], rest[i+2])
			if err != nil {
				return q, err
			}
			q.shape.Long, q.shape.Lat = long, lat
			fromLoc = true
			i += 2
		case search && !byBox && left >= 2 && equalFold(a, "byradius"):
			if err := parseRadius(rest[i+1:i+3], &q.shape); err != nil {
				return q, err
			}
			q.shape.Box = false
			byRadius = true
			i += 2
		case search && !byRadius && left >= 3 && equalFold(a, "bybox"):
			if err := parseBox(rest[i+1:i+4], &q.shape); err != nil {
				return q, err
			}
			q.shape.Box = true
			byBox = true
			i += 3
		default:
			return q, replyErr(errSyntax)
		}
	}
	switch {
	case q.store != nil && (q.withDist || q.withHash || q.withCoord):
		what := "STORE option in GEORADIUS"
		if flags&geoSearchStore != 0 {
			what = "GEOSEARCHSTORE"
		}
		return q, replyErr("ERR " + what + " is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
	case search && !fromMember && !fromLoc:
		return q, replyErr("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for " + string(args[0]))
	case search && !byRadius && !byBox:
		return q, replyErr("ERR exactly one of BYRADIUS and BYBOX can be specified for " + string(args[0]))
	case q.any && q.count == 0:
		return q, replyErr("ERR the ANY argument requires COUNT argument")
	}
	// COUNT picks the nearest: without ANY it sorts, ascending unless told.
	if q.count != 0 && q.sort == geoSortNone && !q.any {
		q.sort = geoSortAsc
	}
	return q, nil
}

// memberPoint sets the shape's centre to member's point.
func memberPoint(z *record.Typed, member []byte, s *geohash.Shape) bool {
	score, ok := z.Score(member)
	if !ok {
		return false
	}
	s.Long, s.Lat, ok = geohash.FromScore(score)
	return ok
}

// parseRadius reads "radius unit".
func parseRadius(args [][]byte, s *geohash.Shape) error {
	r, ok := parseScore(args[0])
	if !ok {
		return replyErr("ERR need numeric radius")
	}
	if r < 0 {
		return replyErr("ERR radius cannot be negative")
	}
	s.Radius = r
	conv, err := geoUnit(args[1])
	if err != nil {
		return err
	}
	s.Conversion = conv
	return nil
}

// parseBox reads "width height unit".
func parseBox(args [][]byte, s *geohash.Shape) error {
	w, ok := parseScore(args[0])
	if !ok {
		return replyErr("ERR need numeric width")
	}
	h, ok := parseScore(args[1])
	if !ok {
		return replyErr("ERR need numeric height")
	}
	if h < 0 || w < 0 {
		return replyErr("ERR height or width cannot be negative")
	}
	s.Width, s.Height = w, h
	conv, err := geoUnit(args[2])
	if err != nil {
		return err
	}
	s.Conversion = conv
	return nil
}

// geoPoint is a search's hit.
type geoPoint struct {
	name            []byte
	long, lat, dist float64 // dist in metres until answered
	score           float64
}

// geoFind scans the cells of q's shape in Redis's order, each in score
// order, keeping the members inside the shape; with ANY it stops at COUNT.
func geoFind(z *record.Typed, q geoQuery) []geoPoint {
	v := z.ZView()
	limit := 0
	if q.any {
		limit = int(min(q.count, math.MaxInt32))
	}
	var out []geoPoint
	cells := q.shape.Cells()
	last := -1
	for i, cell := range cells {
		if cell == (geohash.Bits{}) {
			continue
		}
		// Huge radii make neighbouring cells coincide: scanning one twice
		// would answer its members twice.
		if last >= 0 && cell == cells[last] {
			continue
		}
		if limit > 0 && len(out) >= limit {
			break
		}
		lo, hi := geohash.ScoreRange(cell)
		v.Ascend(v.Search(func(e record.ZEntry) bool { return e.Score >= lo }), func(e record.ZEntry) bool {
			if e.Score >= hi {
				return false
			}
			if long, lat, dist, ok := q.shape.Within(e.Score); ok {
				out = append(out, geoPoint{name: e.Name, long: long, lat: lat, dist: dist, score: e.Score})
			}
			return limit == 0 || len(out) < limit
		})
		last = i
	}
	switch q.sort {
	case geoSortAsc:
		slices.SortStableFunc(out, func(a, b geoPoint) int { return cmpFloat(a.dist, b.dist) })
	case geoSortDesc:
		slices.SortStableFunc(out, func(a, b geoPoint) int { return cmpFloat(b.dist, a.dist) })
	}
	if q.count > 0 && int64(len(out)) > q.count {
		out = out[:q.count]
	}
	for i := range out {
		out[i].dist /= q.shape.Conversion
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a > b:
		return 1
	case a == b:
		return 0
	}
	return -1
}

func writeGeoPoints(c *client, q geoQuery, ps []geoPoint) {
	opts := 0
	for _, on := range []bool{q.withDist, q.withHash, q.withCoord} {
		if on {
			opts++
		}
	}
	c.w.WriteArray(len(ps))
	for _, p := range ps {
		if opts > 0 {
			c.w.WriteArray(opts + 1)
		}
		c.w.WriteBulk(p.name)
		if q.withDist {
			c.w.WriteBulkString(formatDistance(p.dist))
		}
		if q.withHash {
			c.w.WriteInt64(int64(p.score))
		}
		if q.withCoord {
			c.w.WriteArray(2)
			c.w.WriteBulkString(humanDouble(p.long))
			c.w.WriteBulkString(humanDouble(p.lat))
		}
	}
}

func cmdGeoRadius(n *Node, c *client, args [][]byte) { geoGeneric(n, c, args, 1, geoFromCoords) }
func cmdGeoRadiusRO(n *Node, c *client, args [][]byte) {
	geoGeneric(n, c, args, 1, geoFromCoords|geoNoStore)
}
func cmdGeoRadiusByMember(n *Node, c *client, args [][]byte) {
	geoGeneric(n, c, args, 1, geoFromMember)
}
func cmdGeoRadiusByMemberRO(n *Node, c *client, args [][]byte) {
	geoGeneric(n, c, args, 1, geoFromMember|geoNoStore)
}
func cmdGeoSearch(n *Node, c *client, args [][]byte) { geoGeneric(n, c, args, 1, geoSearch) }
func cmdGeoSearchStore(n *Node, c *client, args [][]byte) {
	geoGeneric(n, c, args, 2, geoSearch|geoSearchStore)
}

// geoGeneric runs a search command. One that may store runs as one step of
// the write path, reading its source there; the STORE writes through
// storeZSet, as ZRANGESTORE does.
func geoGeneric(n *Node, c *client, args [][]byte, src int, flags geoFlags) {
	if flags&geoNoStore != 0 || flags&geoSearch != 0 && flags&geoSearchStore == 0 {
		z, err := c.readKind(args[src], record.KindZSet)
		if err != nil {
			c.writeErr(err)
			return
		}
		q, err := parseGeoQuery(args, flags, z)
		if err != nil {
			c.writeErr(err)
			return
		}
		if z == nil {
			c.w.WriteArray(0)
			return
		}
		writeGeoPoints(c, q, geoFind(z, q))
		return
	}
	var q geoQuery
	var found []geoPoint
	err := c.update(func(tx *keyspace.Tx) error {
		found = nil
		now := n.nowMillis()
		rec, err := tx.Get(args[src])
		if err != nil {
			return err
		}
		live, err := liveKind(rec, now, record.KindZSet)
		if err != nil {
			return err
		}
		var z *record.Typed
		if live {
			z = rec.Typed
		}
		if q, err = parseGeoQuery(args, flags, z); err != nil {
			return err
		}
		if z != nil {
			found = geoFind(z, q)
		}
		if q.store == nil {
			return nil
		}
		es := make([]record.ZEntry, 0, len(found))
		seen := make(map[string]bool, len(found))
		for _, p := range found {
			if seen[string(p.name)] { // cells that coincide far apart
				continue
			}
			seen[string(p.name)] = true
			score := p.score
			if q.storeDist {
				score = p.dist
			}
			es = append(es, record.ZEntry{Name: bytes.Clone(p.name), Score: score})
		}
		return n.storeZSet(tx, q.store, es, now)
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case q.store != nil:
		c.w.WriteInt(len(found))
	default:
		writeGeoPoints(c, q, found)
	}
}
