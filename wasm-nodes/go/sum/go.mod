module polyhost.dev/wasm-nodes/sum

go 1.24

require polyhost.dev/wasm-sdk v0.0.0

replace polyhost.dev/wasm-sdk => ../../sdk/go
