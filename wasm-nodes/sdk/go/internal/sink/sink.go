// Package sink routes logs and chunks to wherever the build sends them: stderr for a WASI
// command, the host's polyhost.log and polyhost.chunk imports for a reactor.
package sink

import (
	"fmt"
	"os"
)

var levelNames = [...]string{"debug", "info", "warning", "error"}

// Log sends one log line; the reactor package replaces it with the host import.
var Log = func(level int, message string) {
	if level < 0 || level >= len(levelNames) {
		level = 1
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", levelNames[level], message)
}

// Chunk sends one streamed chunk (JSON text); a command has no channel for them and drops it.
var Chunk = func(json []byte) {}
