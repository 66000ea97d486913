// Command testkit is the sidecar that polyhost's own tests run against: node types that echo,
// sleep, hang, crash, stream, fail and report their process, under the prefix "go.".
//
// Environment switches, read at start:
//
//	POLYHOST_TESTKIT_START_DELAY_MS=N   sleep N ms before listening
//	POLYHOST_TESTKIT_EXIT_AT_START=N    exit with status N before listening
//	POLYHOST_TESTKIT_PROTOCOL=V         report protocol version V in Describe instead of 1.1
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"polyhost.dev/sidecar"
)

func main() {
	if v := os.Getenv("POLYHOST_TESTKIT_EXIT_AT_START"); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testkit: POLYHOST_TESTKIT_EXIT_AT_START=%q is not an integer\n", v)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "testkit: exiting with status %d before listening, as asked\n", code)
		os.Exit(code)
	}
	if v := os.Getenv("POLYHOST_TESTKIT_START_DELAY_MS"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testkit: POLYHOST_TESTKIT_START_DELAY_MS=%q is not an integer\n", v)
			os.Exit(2)
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	var opts []sidecar.Option
	if v := os.Getenv("POLYHOST_TESTKIT_PROTOCOL"); v != "" {
		opts = append(opts, sidecar.WithProtocolVersion(v))
	}
	newSidecar(opts...).ServeOrExit()
}
