// Package polyhost writes polyhost wasm nodes in Go.
//
// A node is a Handler. As a WASI command (GOOS=wasip1 GOARCH=wasm go build):
//
//	func main() { polyhost.Run(sum) }
//
// As a reactor, which the host calls without starting a process each time, import
// polyhost.dev/wasm-sdk/reactor instead and build with -buildmode=c-shared:
//
//	func init() { reactor.Handle(sum) }
//	func main() {}
//
// See ABI.md beside the SDKs for the contract both follow.
package polyhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"polyhost.dev/wasm-sdk/internal/sink"
)

// Ctx is the context of one call.
type Ctx struct {
	RunID  string `json:"run_id"`
	NodeID string `json:"node_id"`
	// Attempt is 1 for the first attempt and counts up on retries.
	Attempt int `json:"attempt"`
	// IdempotencyKey is the same for every attempt of this node in this run.
	IdempotencyKey string `json:"idempotency_key"`
}

// Level is a log level.
type Level int

// The log levels, as the host numbers them.
const (
	Debug Level = iota
	Info
	Warning
	Error
)

// Log sends a log line to the host (a command writes it to stderr).
func (Ctx) Log(level Level, format string, args ...any) {
	sink.Log(int(level), fmt.Sprintf(format, args...))
}

// Chunk streams one JSON-encodable value to the host. Commands drop chunks: their stdout is
// the output alone.
func (Ctx) Chunk(value any) error {
	data, err := json.Marshal(value)
	if err != nil {
		return err
	}
	sink.Chunk(data)
	return nil
}

// Handler is a node: it receives the resolved params and returns the output object, or an
// error (a *NodeError to choose the code).
type Handler func(params map[string]any, ctx Ctx) (map[string]any, error)

// NodeError is a failure the node reports with a stable snake_case code.
type NodeError struct {
	Code    string
	Message string
}

func (e *NodeError) Error() string { return e.Code + ": " + e.Message }

// Fail returns a *NodeError with the code and a formatted message.
func Fail(code, format string, args ...any) error {
	return &NodeError{Code: code, Message: fmt.Sprintf(format, args...)}
}

type input struct {
	Params map[string]any `json:"params"`
	Ctx    Ctx            `json:"ctx"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Call decodes one input, runs the handler and encodes its result: the output object, or an
// {"error": {...}} object. Panics propagate. Used by Run and by the reactor package.
func Call(h Handler, data []byte) (output map[string]any, failure *NodeError) {
	in := input{Ctx: Ctx{Attempt: 1}}
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, &NodeError{Code: "bad_input", Message: "the input is not a JSON object: " + err.Error()}
	}
	if in.Params == nil {
		in.Params = map[string]any{}
	}
	out, err := h(in.Params, in.Ctx)
	if err != nil {
		var nodeErr *NodeError
		if errors.As(err, &nodeErr) {
			return nil, nodeErr
		}
		return nil, &NodeError{Code: "node_failed", Message: err.Error()}
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// Encode marshals a value as JSON, or a failure describing why it could not be.
func Encode(value any) []byte {
	data, err := json.Marshal(value)
	if err != nil {
		data, _ = json.Marshal(map[string]any{"error": errorBody{"bad_output", err.Error()}})
	}
	return data
}

// ErrorObject is the {"error": {...}} form of a failure.
func ErrorObject(failure *NodeError) map[string]any {
	return map[string]any{"error": errorBody{failure.Code, failure.Message}}
}

// Run is a WASI command's main: the input from stdin, the output object (or {"error": ...})
// to stdout, exit status 0. A panic exits non-zero with its message on stderr.
func Run(h Handler) {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot read the input from stdin:", err)
		os.Exit(2)
	}
	output, failure := Call(h, data)
	var result []byte
	if failure != nil {
		result = Encode(ErrorObject(failure))
	} else {
		result = Encode(output)
	}
	if _, err := os.Stdout.Write(result); err != nil {
		fmt.Fprintln(os.Stderr, "cannot write the output:", err)
		os.Exit(2)
	}
}
