//go:build cgo

package geohash

// #cgo LDFLAGS: -lm
// #include <math.h>
import "C"

// The C library's sin, cos and asin, which Redis's distances use: Go's
// math package differs from them in the last bit now and then, and a
// stored distance (STOREDIST) shows every bit.

func sin(x float64) float64  { return float64(C.sin(C.double(x))) }
func cos(x float64) float64  { return float64(C.cos(C.double(x))) }
func asin(x float64) float64 { return float64(C.asin(C.double(x))) }
