package sidecar

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"

	"polyhost.dev/sidecar/gen/runtimev1"
)

// errCallEnded is returned for an event sent after the call's final event.
var errCallEnded = errors.New("sidecar: the call has ended")

// eventSink takes the events of one call, one at a time: the gRPC stream of an Execute call,
// or a collector for a Run call.
type eventSink interface {
	Send(*runtimev1.ExecuteEvent) error
}

// collector is the eventSink of a Run call: it keeps the events for the single reply.
type collector struct {
	events []*runtimev1.ExecuteEvent
}

// Send implements eventSink.
func (c *collector) Send(ev *runtimev1.ExecuteEvent) error {
	c.events = append(c.events, ev)
	return nil
}

// emitter passes the events of one call to its sink, one at a time and in order, and nothing
// after the final Result or Error.
type emitter struct {
	mu    sync.Mutex
	sink  eventSink
	ended bool
	err   error // the first send error; the sink is broken after it
}

// send sends a log, chunk or progress event.
func (e *emitter) send(ev *runtimev1.ExecuteEvent) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		return errCallEnded
	}
	if e.err == nil {
		e.err = e.sink.Send(ev)
	}
	return e.err
}

// finish sends the final event and ends the call.
func (e *emitter) finish(ev *runtimev1.ExecuteEvent) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		return errCallEnded
	}
	e.ended = true
	if e.err != nil {
		return e.err
	}
	return e.sink.Send(ev)
}

// abandon ends the call without a final event (the call is gone).
func (e *emitter) abandon() {
	e.mu.Lock()
	e.ended = true
	e.mu.Unlock()
}

func resultEvent(outputJSON []byte) *runtimev1.ExecuteEvent {
	return &runtimev1.ExecuteEvent{Event: &runtimev1.ExecuteEvent_Result{
		Result: &runtimev1.Result{OutputJson: string(outputJSON)},
	}}
}

func errorEvent(code, message, field string, retryable bool) *runtimev1.ExecuteEvent {
	return &runtimev1.ExecuteEvent{Event: &runtimev1.ExecuteEvent_Error{
		Error: &runtimev1.Error{Code: code, Message: message, Field: field, Retryable: retryable},
	}}
}

// marshalJSON encodes v as compact JSON without escaping <, > and &.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// isJSONObject reports whether text is a valid JSON object.
func isJSONObject(text []byte) bool {
	trimmed := bytes.TrimLeft(text, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
}
