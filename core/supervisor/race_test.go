//go:build race

package supervisor

// raceEnabled: memory figures under the race detector mean little.
const raceEnabled = true
