//go:build race

package wal

// raceDetector: built with -race (see collectValueLog).
const raceDetector = true
