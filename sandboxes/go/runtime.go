package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"polyhost.dev/sidecar/gen/runtimev1"
)

// runtimeServer implements the NodeRuntime service for a Sidecar.
type runtimeServer struct {
	runtimev1.UnimplementedNodeRuntimeServer
	sc       *Sidecar
	describe *runtimev1.DescribeResponse
	log      *slog.Logger
	calls    callTracker
}

func newRuntimeServer(sc *Sidecar, log *slog.Logger) *runtimeServer {
	resp := &runtimev1.DescribeResponse{
		ProtocolVersion: sc.opts.protocolVersion,
		Name:            sc.name,
		Sdk:             SDK,
	}
	for _, t := range sc.NodeTypes() {
		resp.NodeTypes = append(resp.NodeTypes, t.spec())
	}
	return &runtimeServer{sc: sc, describe: resp, log: log}
}

// Describe returns the sidecar's name, versions and node types.
func (r *runtimeServer) Describe(_ context.Context, req *runtimev1.DescribeRequest) (*runtimev1.DescribeResponse, error) {
	if err := checkProtocol(req.GetProtocolVersion()); err != nil {
		return nil, err
	}
	return r.describe, nil
}

// Execute runs one call: the handler's logs, chunks and progress reports, then exactly one
// Result or Error, streamed as they come.
func (r *runtimeServer) Execute(req *runtimev1.ExecuteRequest, stream runtimev1.NodeRuntime_ExecuteServer) error {
	return r.execute(stream.Context(), req, stream)
}

// Run runs one call like Execute but answers once, with all its events in order (since 1.1).
func (r *runtimeServer) Run(ctx context.Context, req *runtimev1.ExecuteRequest) (*runtimev1.RunReply, error) {
	events := &collector{}
	if err := r.execute(ctx, req, events); err != nil {
		return nil, err
	}
	// execute has sent the final event: the emitter takes nothing more, so events is complete.
	return &runtimev1.RunReply{Events: events.events}, nil
}

// execute runs one call of Execute or Run (ctx is the call's context) and passes its events,
// ending with exactly one Result or Error, to sink. It returns a gRPC status error when the
// call is refused or ends before its final event.
func (r *runtimeServer) execute(ctx context.Context, req *runtimev1.ExecuteRequest, sink eventSink) error {
	if err := checkProtocol(req.GetProtocolVersion()); err != nil {
		return err
	}
	if !r.calls.begin() {
		return status.Error(codes.Unavailable, "the sidecar is shutting down")
	}
	defer r.calls.end()

	out := &emitter{sink: sink}
	handler, ok := r.sc.handler(req.GetNodeType())
	if !ok {
		return out.finish(errorEvent(codeUnknownNodeType, fmt.Sprintf(
			"node type %q is not offered by sidecar %s; it offers: %s",
			req.GetNodeType(), r.sc.name, strings.Join(r.sc.typeNames(), ", ")), "", false))
	}
	params := []byte(req.GetParamsJson())
	if !isJSONObject(params) {
		return out.finish(errorEvent(codeInvalidParameters, "params_json is not a JSON object", "", false))
	}

	call := &Call{
		nodeType: req.GetNodeType(),
		params:   params,
		info:     nodeContext(ctx, req.GetContext()),
		out:      out,
	}
	// The handler runs on its own goroutine so that a handler that ignores cancellation
	// cannot hold the call (or a shutdown) once the call is cancelled.
	final := make(chan *runtimev1.ExecuteEvent, 1)
	go r.run(ctx, handler, call, final)
	select {
	case ev := <-final:
		return out.finish(ev)
	case <-ctx.Done():
		out.abandon()
		return status.FromContextError(ctx.Err()).Err()
	}
}

// run calls the handler and sends the final event made of what it returned, or of its panic,
// to final.
func (r *runtimeServer) run(ctx context.Context, h Handler, call *Call, final chan<- *runtimev1.ExecuteEvent) {
	var ev *runtimev1.ExecuteEvent
	defer func() {
		if ev == nil { // the handler panicked (or called runtime.Goexit)
			p := recover()
			if p == nil {
				p = "runtime.Goexit"
			}
			r.log.Error("node handler panicked", "node_type", call.nodeType, "panic", fmt.Sprint(p),
				"stack", string(debug.Stack()))
			ev = errorEvent(codeHandlerPanic, fmt.Sprintf("node type %s panicked: %v", call.nodeType, p), "", false)
		}
		final <- ev
	}()
	output, err := h(ctx, call)
	ev = outcome(output, err)
}

// outcome is the final event for a handler's output and error.
func outcome(output any, err error) *runtimev1.ExecuteEvent {
	if err != nil {
		if ne, ok := asNodeError(err); ok {
			return errorEvent(ne.code(), ne.Message, ne.Field, ne.Retryable)
		}
		return errorEvent(codeHandlerError, err.Error(), "", false)
	}
	data, err := marshalJSON(output)
	if err != nil {
		return errorEvent(codeInvalidOutput, "cannot encode the output as JSON: "+err.Error(), "", false)
	}
	if !isJSONObject(data) {
		return errorEvent(codeInvalidOutput, fmt.Sprintf(
			"the output must be a JSON object, got %s", jsonKind(data)), "", false)
	}
	return resultEvent(data)
}

// nodeContext converts the request's context; the deadline falls back to the call's own.
func nodeContext(ctx context.Context, nc *runtimev1.NodeContext) NodeContext {
	info := NodeContext{
		RunID:          nc.GetRunId(),
		WorkflowID:     nc.GetWorkflowId(),
		NodeID:         nc.GetNodeId(),
		Attempt:        int(nc.GetAttempt()),
		IdempotencyKey: nc.GetIdempotencyKey(),
	}
	if secs := nc.GetDeadlineUnix(); secs > 0 {
		info.Deadline = time.Unix(0, int64(secs*1e9))
	} else if d, ok := ctx.Deadline(); ok {
		info.Deadline = d
	}
	return info
}

// jsonKind names the kind of a JSON value, for messages.
func jsonKind(data []byte) string {
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// callTracker counts running Execute and Run calls so that a shutdown can wait for them, and refuses
// new ones once the shutdown has begun.
type callTracker struct {
	mu       sync.Mutex
	running  int
	draining bool
	idle     chan struct{}
}

// begin counts a new call; false once draining.
func (t *callTracker) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.draining {
		return false
	}
	t.running++
	return true
}

// end counts a call's end.
func (t *callTracker) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.running--
	if t.draining && t.running == 0 {
		close(t.idle)
	}
}

// drain refuses new calls and returns a channel closed once no call runs.
func (t *callTracker) drain() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.draining {
		t.draining = true
		t.idle = make(chan struct{})
		if t.running == 0 {
			close(t.idle)
		}
	}
	return t.idle
}
