//go:build wasip1

// Package reactor exports a Handler through the reactor ABI: polyhost_alloc and polyhost_run,
// with logs and chunks sent to the host's polyhost.log and polyhost.chunk imports.
//
// Register the handler from init (a reactor's main never runs) and build with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o node.wasm .
package reactor

import (
	"unsafe"

	polyhost "polyhost.dev/wasm-sdk"
	"polyhost.dev/wasm-sdk/internal/sink"
)

var handler polyhost.Handler

// Handle makes h the node this module runs. Call it from an init function.
func Handle(h polyhost.Handler) {
	handler = h
}

// pinned keeps the input and output buffers reachable: the host holds their addresses, and
// Go's collector would otherwise reclaim them. The instance lives for one call, so they are
// never released.
var pinned [][]byte

//go:wasmimport polyhost log
func hostLog(level int32, ptr unsafe.Pointer, length int32)

//go:wasmimport polyhost chunk
func hostChunk(ptr unsafe.Pointer, length int32)

func init() {
	sink.Log = func(level int, message string) {
		data := []byte(message)
		hostLog(int32(level), unsafe.Pointer(unsafe.SliceData(data)), int32(len(data)))
	}
	sink.Chunk = func(json []byte) {
		hostChunk(unsafe.Pointer(unsafe.SliceData(json)), int32(len(json)))
	}
}

//go:wasmexport polyhost_alloc
func polyhostAlloc(size int32) int32 {
	buf := make([]byte, max(size, 1))
	pinned = append(pinned, buf)
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}

//go:wasmexport polyhost_run
func polyhostRun(ptr unsafe.Pointer, length int32) int64 {
	in := unsafe.Slice((*byte)(ptr), length)
	var result []byte
	if handler == nil {
		result = polyhost.Encode(polyhost.ErrorObject(&polyhost.NodeError{
			Code: "no_handler", Message: "the module registered no handler (reactor.Handle)"}))
	} else if output, failure := polyhost.Call(handler, in); failure != nil {
		result = polyhost.Encode(polyhost.ErrorObject(failure))
	} else {
		result = polyhost.Encode(map[string]any{"ok": output})
	}
	pinned = append(pinned, result)
	return int64(uintptr(unsafe.Pointer(unsafe.SliceData(result))))<<32 | int64(len(result))
}
