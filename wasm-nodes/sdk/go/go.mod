module polyhost.dev/wasm-sdk

go 1.24
