//go:build race

package dnsserve

// raceEnabled reports whether the race detector is on; it allocates.
const raceEnabled = true
