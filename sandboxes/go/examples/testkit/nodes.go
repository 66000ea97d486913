package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"time"

	"polyhost.dev/sidecar"
)

// newSidecar returns the testkit sidecar with its node types registered. The quick ones (go.echo,
// go.big, go.fail, go.pid) are unary; those that stream, wait or die are not.
func newSidecar(opts ...sidecar.Option) *sidecar.Sidecar {
	s := sidecar.New("testkit", opts...)
	s.Node(sidecar.NodeType{Type: "go.echo", Description: "Returns its parameters and context.", Unary: true}, echo)
	s.Node(sidecar.NodeType{
		Type:        "go.sleep",
		Description: "Waits ms milliseconds; ends early with the error cancelled when cancelled.",
		InputSchema: `{"type":"object","properties":{"ms":{"type":"integer","minimum":0}},"required":["ms"]}`,
	}, sleep)
	s.Node(sidecar.NodeType{Type: "go.hang", Description: "Never returns and ignores cancellation."}, hang)
	s.Node(sidecar.NodeType{
		Type:        "go.crash",
		Description: "Logs a line, waits after_ms milliseconds, then kills the process (status 3).",
		InputSchema: `{"type":"object","properties":{"after_ms":{"type":"integer","minimum":0}}}`,
	}, crash)
	s.Node(sidecar.NodeType{
		Type:        "go.big",
		Description: `Returns {"data": "<bytes times x>"}.`,
		InputSchema: `{"type":"object","properties":{"bytes":{"type":"integer","minimum":0}},"required":["bytes"]}`,
		Unary:       true,
	}, big)
	s.Node(sidecar.NodeType{
		Type:        "go.stream",
		Description: `For i from 1 to n: a log "line i", a chunk {"i": i} and progress i/n; then {"n": n}.`,
		InputSchema: `{"type":"object","properties":{"n":{"type":"integer","minimum":0}},"required":["n"]}`,
	}, stream)
	s.Node(sidecar.NodeType{
		Type:        "go.fail",
		Description: "Fails with the typed node error given by its parameters.",
		InputSchema: `{"type":"object","properties":{"code":{"type":"string"},"message":{"type":"string"},` +
			`"field":{"type":"string"},"retryable":{"type":"boolean"}}}`,
		Unary: true,
	}, fail)
	s.Node(sidecar.NodeType{Type: "go.pid", Description: "Returns the sidecar's process id.", Unary: true}, pid)
	return s
}

func echo(_ context.Context, call *sidecar.Call) (any, error) {
	info := call.Context()
	return map[string]any{
		"params": json.RawMessage(call.Params()),
		"context": map[string]any{
			"run_id":          info.RunID,
			"workflow_id":     info.WorkflowID,
			"node_id":         info.NodeID,
			"attempt":         info.Attempt,
			"idempotency_key": info.IdempotencyKey,
		},
	}, nil
}

func sleep(ctx context.Context, call *sidecar.Call) (any, error) {
	var p struct {
		MS int `json:"ms"`
	}
	if err := call.Decode(&p); err != nil {
		return nil, err
	}
	timer := time.NewTimer(time.Duration(p.MS) * time.Millisecond)
	defer timer.Stop()
	select {
	case <-timer.C:
		return map[string]any{"slept_ms": p.MS}, nil
	case <-ctx.Done():
		return nil, sidecar.NodeError{Code: "cancelled", Message: "the call was cancelled while sleeping"}
	}
}

func hang(context.Context, *sidecar.Call) (any, error) {
	select {}
}

func crash(_ context.Context, call *sidecar.Call) (any, error) {
	var p struct {
		AfterMS int `json:"after_ms"`
	}
	if err := call.Decode(&p); err != nil {
		return nil, err
	}
	call.Logf(sidecar.Warning, "crashing in %d ms", p.AfterMS)
	time.Sleep(time.Duration(p.AfterMS) * time.Millisecond)
	os.Exit(3)
	return nil, nil
}

func big(_ context.Context, call *sidecar.Call) (any, error) {
	var p struct {
		Bytes int `json:"bytes"`
	}
	if err := call.Decode(&p); err != nil {
		return nil, err
	}
	if p.Bytes < 0 {
		return nil, sidecar.NodeError{Code: "invalid_input", Field: "bytes", Message: "bytes must not be negative"}
	}
	return map[string]any{"data": strings.Repeat("x", p.Bytes)}, nil
}

func stream(_ context.Context, call *sidecar.Call) (any, error) {
	var p struct {
		N int `json:"n"`
	}
	if err := call.Decode(&p); err != nil {
		return nil, err
	}
	for i := 1; i <= p.N; i++ {
		call.Logf(sidecar.Info, "line %d", i)
		if err := call.Chunk(map[string]int{"i": i}); err != nil {
			return nil, err
		}
		call.Progress(float64(i)/float64(p.N), "")
	}
	return map[string]any{"n": p.N}, nil
}

func fail(_ context.Context, call *sidecar.Call) (any, error) {
	var p struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Field     string `json:"field"`
		Retryable bool   `json:"retryable"`
	}
	if err := call.Decode(&p); err != nil {
		return nil, err
	}
	return nil, sidecar.NodeError{Code: p.Code, Message: p.Message, Field: p.Field, Retryable: p.Retryable}
}

func pid(context.Context, *sidecar.Call) (any, error) {
	return map[string]any{"pid": os.Getpid()}, nil
}
