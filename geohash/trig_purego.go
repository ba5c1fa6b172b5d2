//go:build !cgo

package geohash

import "math"

// Without cgo Go's math stands in for the C library's functions: a
// distance may then differ from Redis's in its last bit.

func sin(x float64) float64  { return math.Sin(x) }
func cos(x float64) float64  { return math.Cos(x) }
func asin(x float64) float64 { return math.Asin(x) }
