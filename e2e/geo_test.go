package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestGeoCommandsMatchRedis: every geo command, its options and its
// errors, byte for byte as redis-server answers, edge coordinates included.
func TestGeoCommandsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	compareRESP(t, redisAddr, p.addr, geoScript)
}

const geoScript = `
GEOADD g 200 100 m
GEOADD g inf 100 m
GEOADD g 10 -inf m
GEOADD g x 1 m
GEOADD g 1 "" m
GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
GEOPOS g Palermo nope
GEOPOS nokey a b
GEOHASH g Palermo Catania nope
GEOHASH nokey a
GEODIST g Palermo Catania
GEODIST g Palermo Catania km
GEODIST g Palermo Catania MI
GEODIST g Palermo Catania ft
GEODIST g Palermo Catania parsec
GEODIST g Palermo Catania ft x
GEODIST nokey a b
GEODIST g Palermo nope
GEODIST g Palermo Palermo
GEOADD g 180 85.05112878 ne -180 -85.05112878 sw 180 -85.05112878 se -180 85.05112878 nw
GEOADD g 0 0 origin -0.0001 0.0001 nearorigin 179.9999 0 dateline -179.9999 0 dateline2
GEOADD g 180 85.05112879 over
GEOADD g 180.0000001 0 over
GEOPOS g ne sw se nw origin nearorigin dateline dateline2
GEOHASH g ne sw se nw origin nearorigin dateline dateline2
ZRANGE g 0 -1 WITHSCORES
GEODIST g ne sw
GEODIST g dateline dateline2 km
GEODIST g origin nearorigin m
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHCOORD WITHDIST WITHHASH
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km DESC WITHDIST
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km ANY
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 ANY
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 DESC
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km COUNT 0
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km COUNT -3
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km COUNT x
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km COUNT
GEOSEARCH g FROMMEMBER Palermo BYBOX 400 400 km WITHDIST
GEOSEARCH g FROMMEMBER Palermo BYBOX 400 400 km WITHDIST WITHCOORD ASC
GEOSEARCH g FROMMEMBER Palermo BYBOX 100 400 km
GEOSEARCH g FROMMEMBER Palermo BYBOX 400 100 km
GEOSEARCH g FROMMEMBER Palermo BYBOX -1 100 km
GEOSEARCH g FROMMEMBER Palermo BYBOX x 100 km
GEOSEARCH g FROMMEMBER Palermo BYBOX 1 x km
GEOSEARCH g FROMMEMBER Palermo BYBOX 1 1 yards
GEOSEARCH g FROMMEMBER nope BYBOX 400 400 km
GEOSEARCH g FROMLONLAT 15 37 FROMMEMBER Palermo BYRADIUS 1 km
GEOSEARCH g FROMMEMBER Palermo FROMLONLAT 15 37 BYRADIUS 1 km
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 1 km BYBOX 1 1 km
GEOSEARCH g BYRADIUS 1 km FROMLONLAT 15 37
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 1 km STORE x
GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 1 km STOREDIST
GEOSEARCH g FROMLONLAT 200 37 BYRADIUS 1 km
GEOSEARCH g BYRADIUS 1 km WITHDIST WITHHASH
GEOSEARCH g FROMLONLAT 15 37 WITHDIST
GEOSEARCH nokey FROMMEMBER a BYRADIUS 1 km
GEOSEARCH nokey FROMLONLAT 0 0 BYRADIUS 1 km
GEOSEARCH nokey FROMLONLAT 0 0 BYRADIUS 1 km ANY
GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 0 m WITHDIST
GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 20 m WITHDIST
GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 100000 km WITHDIST
GEOSEARCH g FROMLONLAT 0 0 BYRADIUS 10000 km WITHDIST
GEOSEARCH g FROMLONLAT 180 0 BYRADIUS 50 km WITHDIST
GEOSEARCH g FROMLONLAT 180 85 BYRADIUS 500 km WITHDIST WITHCOORD
GEOSEARCH g FROMLONLAT -180 -85 BYBOX 2000 2000 km WITHDIST
GEOSEARCH g FROMLONLAT 0 0 BYBOX 0 0 m WITHDIST
GEOSEARCH g FROMLONLAT 0 0 BYBOX 100000 100000 km
GEOSEARCHSTORE dst g FROMMEMBER Palermo BYBOX 400 400 km
ZRANGE dst 0 -1 WITHSCORES
GEOSEARCHSTORE dst g FROMMEMBER Palermo BYBOX 400 400 km STOREDIST
ZRANGE dst 0 -1 WITHSCORES
GEOSEARCHSTORE dst g FROMMEMBER Palermo BYBOX 400 400 mi STOREDIST DESC COUNT 1
ZRANGE dst 0 -1 WITHSCORES
GEOSEARCHSTORE dst g FROMMEMBER Palermo BYBOX 400 400 km WITHDIST
GEOSEARCHSTORE dst g FROMMEMBER Palermo BYBOX 400 400 km STORE x
GEOSEARCHSTORE dst g FROMLONLAT 100 10 BYRADIUS 1 km
EXISTS dst
GEOSEARCHSTORE dst nokey FROMLONLAT 100 10 BYRADIUS 1 km
GEORADIUS g 15 37 200 km
GEORADIUS g 15 37 200 km WITHDIST WITHHASH WITHCOORD COUNT 1
GEORADIUS g 15 37 -1 km
GEORADIUS g 15 37 x km
GEORADIUS g 15 37 1 parsec
GEORADIUS g 15 37 1 km FROMLONLAT 1 1
GEORADIUS g 15 95 1 km
GEORADIUS g 15 37 200 km STORE dst2
ZRANGE dst2 0 -1 WITHSCORES
GEORADIUS g 15 37 200 km STOREDIST dst2
ZRANGE dst2 0 -1 WITHSCORES
GEORADIUS g 15 37 200 km STORE dst2 WITHDIST
GEORADIUS g 15 37 200 km STORE
GEORADIUS nokey 15 37 200 km STORE dst2
EXISTS dst2
GEORADIUS nokey 15 37 200 km
GEORADIUS_RO g 15 37 200 km STORE dst2
GEORADIUS_RO g 15 37 200 km WITHDIST
GEORADIUSBYMEMBER g Palermo 200 km WITHCOORD
GEORADIUSBYMEMBER g Palermo 200 km STORE dst3
ZRANGE dst3 0 -1 WITHSCORES
GEORADIUSBYMEMBER g nope 200 km
GEORADIUSBYMEMBER g Palermo x km
GEORADIUSBYMEMBER nokey Palermo xx km
GEORADIUSBYMEMBER nokey Palermo 1 km STORE dst3
EXISTS dst3
GEORADIUSBYMEMBER_RO g Palermo 200 km DESC WITHDIST
GEORADIUSBYMEMBER_RO g Palermo 200 km STORE x
GEOADD g xx nx 1 2 a
GEOADD g ch 13.361389 38.2 Palermo
GEOADD g nx ch 13.361389 38.3 Palermo 1 1 new
GEOADD g xx 1 1 new 2 2 other
GEOADD g xx ch 3 3 new
GEOADD g gt 1 1 new
GEOADD g 1 2
GEOADD g nx xx ch
GEOADD g ch ch ch
ZSCORE g new
GEOPOS g new other
SET s x
GEOADD s 1 1 a
GEOPOS s a
GEOHASH s a
GEODIST s a b
GEOSEARCH s FROMLONLAT 0 0 BYRADIUS 1 m
GEOSEARCHSTORE d s FROMLONLAT 0 0 BYRADIUS 1 m
GEOSEARCHSTORE s g FROMLONLAT 0 0 BYRADIUS 1 m
TYPE s
GEORADIUS s 0 0 1 m
GEORADIUSBYMEMBER s a 1 m
ZADD plain 1 a -1 b 1e20 c
GEOPOS plain a c
GEOHASH plain a
GEODIST plain a c
`

// TestGeoSearchesMatchRedis: seeded random points, all over the globe and
// packed around a few centres, searched by radius and box at every scale,
// answer as redis-server answers: which members, in which order, with
// which distances, hashes and coordinates.
func TestGeoSearchesMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	rng := rand.New(rand.NewPCG(15, 2))
	var b strings.Builder
	coord := func(center, spread, lo, hi float64) float64 {
		return min(max(center+(rng.Float64()*2-1)*spread, lo), hi)
	}
	centres := [][2]float64{{0, 0}, {13.4, 52.5}, {-122.4, 37.8}, {179.9, 0}, {-179.9, -60}, {10, 84.9}}
	// Two keys: a small one (Redis's listpack) and one past 128 members.
	for _, key := range []string{"small", "big"} {
		points := 40
		if key == "big" {
			points = 600
		}
		for i := range points {
			var long, lat float64
			if i%3 == 0 {
				long, lat = coord(0, 180, -180, 180), coord(0, 85.05, -85.05112878, 85.05112878)
			} else {
				c := centres[i%len(centres)]
				spread := []float64{0.01, 0.5, 5}[i%3]
				long, lat = coord(c[0], spread, -180, 180), coord(c[1], spread, -85.05112878, 85.05112878)
			}
			fmt.Fprintf(&b, "GEOADD %s %.6f %.6f m%d\n", key, long, lat, i)
		}
		for i := range 60 {
			c := centres[i%len(centres)]
			long, lat := coord(c[0], 1, -180, 180), coord(c[1], 1, -85.05112878, 85.05112878)
			radius := []string{"1 km", "50 km", "500 km", "3000 km", "20000 ft", "7 mi"}[i%6]
			opts := []string{"WITHDIST", "WITHDIST WITHCOORD ASC", "WITHHASH DESC", "COUNT 3 WITHDIST", "COUNT 2 ANY", ""}[(i/6)%6]
			fmt.Fprintf(&b, "GEOSEARCH %s FROMLONLAT %.6f %.6f BYRADIUS %s %s\n", key, long, lat, radius, opts)
			box := []string{"10 20 km", "200 50 km", "3000 3000 km", "1 1 mi"}[i%4]
			fmt.Fprintf(&b, "GEOSEARCH %s FROMLONLAT %.6f %.6f BYBOX %s WITHDIST %s\n", key, long, lat, box, []string{"", "ASC", "DESC"}[i%3])
			fmt.Fprintf(&b, "GEORADIUSBYMEMBER %s m%d %s WITHDIST\n", key, i, radius)
			fmt.Fprintf(&b, "GEODIST %s m%d m%d km\n", key, i, i+7)
			fmt.Fprintf(&b, "GEOHASH %s m%d m%d\n", key, i, i+1)
			fmt.Fprintf(&b, "GEOPOS %s m%d\n", key, i)
		}
		fmt.Fprintf(&b, "GEOSEARCHSTORE %s-out %s FROMLONLAT 0 0 BYRADIUS 3000 km STOREDIST\nZRANGE %s-out 0 -1 WITHSCORES\n", key, key, key)
	}
	compareRESP(t, redisAddr, p.addr, b.String())
}
