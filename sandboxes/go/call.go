package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"polyhost.dev/sidecar/gen/runtimev1"
)

// Call is one attempt of one node, as its handler sees it. Its methods may be called from any
// goroutine while the handler runs; events sent after the handler has returned are dropped.
type Call struct {
	nodeType string
	params   json.RawMessage
	info     NodeContext
	out      *emitter
}

// NodeContext tells which run, workflow, node and attempt a call belongs to.
type NodeContext struct {
	RunID      string
	WorkflowID string
	NodeID     string
	// Attempt is 1 for the first attempt.
	Attempt int
	// IdempotencyKey is the same across attempts and across a restart of the host: use it to
	// make side effects happen once.
	IdempotencyKey string
	// Deadline is when the host gives up on the call; zero when there is none.
	Deadline time.Time
}

// Level is the level of a log line sent to the host.
type Level int

// Log levels.
const (
	Debug Level = iota + 1
	Info
	Warning
	Error
)

// String returns the level's name.
func (l Level) String() string {
	switch l {
	case Debug:
		return "debug"
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

func (l Level) proto() runtimev1.Log_Level {
	if l < Debug || l > Error {
		return runtimev1.Log_INFO
	}
	return runtimev1.Log_Level(l)
}

// NodeType returns the node type being run.
func (c *Call) NodeType() string { return c.nodeType }

// Params returns the parameters as JSON text (always a JSON object).
func (c *Call) Params() json.RawMessage { return c.params }

// Context returns the run, workflow, node and attempt the call belongs to. (The handler's
// context.Context is its first argument.)
func (c *Call) Context() NodeContext { return c.info }

// Decode unmarshals the parameters into v (a pointer, usually to a struct). When a value has
// the wrong JSON type it returns a *[NodeError] with code "invalid_parameters" that names the
// field, ready to be returned by the handler.
func (c *Call) Decode(v any) error {
	err := json.Unmarshal(c.params, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &NodeError{
			Code:    codeInvalidParameters,
			Message: fmt.Sprintf("parameter %s: a JSON %s cannot be read as %s", typeErr.Field, typeErr.Value, typeErr.Type),
			Field:   typeErr.Field,
		}
	}
	return &NodeError{Code: codeInvalidParameters, Message: "cannot decode the parameters: " + err.Error()}
}

// Log sends a log line to the host at once (under Run, with the result; see [NodeType].Unary).
func (c *Call) Log(level Level, message string) {
	_ = c.out.send(&runtimev1.ExecuteEvent{Event: &runtimev1.ExecuteEvent_Log{
		Log: &runtimev1.Log{Level: level.proto(), Message: message},
	}})
}

// Logf sends a formatted log line to the host, like [Call.Log].
func (c *Call) Logf(level Level, format string, args ...any) {
	c.Log(level, fmt.Sprintf(format, args...))
}

// Chunk sends a partial result (any value that encodes to JSON) to the host at once (under Run,
// with the result). It fails when v cannot be encoded or the call has ended.
func (c *Call) Chunk(v any) error {
	data, err := marshalJSON(v)
	if err != nil {
		return fmt.Errorf("sidecar: chunk: %w", err)
	}
	return c.out.send(&runtimev1.ExecuteEvent{Event: &runtimev1.ExecuteEvent_Chunk{
		Chunk: &runtimev1.Chunk{DataJson: string(data)},
	}})
}

// Progress reports how far the call has come, as a fraction from 0 to 1 (clamped), with an
// optional message, to the host at once (under Run, with the result).
func (c *Call) Progress(fraction float64, message string) {
	switch {
	case math.IsNaN(fraction) || fraction < 0:
		fraction = 0
	case fraction > 1:
		fraction = 1
	}
	_ = c.out.send(&runtimev1.ExecuteEvent{Event: &runtimev1.ExecuteEvent_Progress{
		Progress: &runtimev1.Progress{Fraction: fraction, Message: message},
	}})
}
