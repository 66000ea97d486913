//go:build reactor

package main

import "polyhost.dev/wasm-sdk/reactor"

// The reactor build: GOOS=wasip1 GOARCH=wasm go build -tags reactor -buildmode=c-shared.
func init() { reactor.Handle(sum) }

func main() {}
