//go:build !reactor

package main

import polyhost "polyhost.dev/wasm-sdk"

// The WASI command build: GOOS=wasip1 GOARCH=wasm go build -o sum.wasm .
func main() { polyhost.Run(sum) }
