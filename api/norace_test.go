//go:build !race

package api_test

// raceEnabled is true when the race detector slows everything down.
const raceEnabled = false
