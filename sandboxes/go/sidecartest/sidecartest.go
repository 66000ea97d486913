// Package sidecartest runs a sidecar in a test and calls it over gRPC, the way a polyhost host
// does.
//
//	func TestDistance(t *testing.T) {
//		c := sidecartest.Start(t, newSidecar())
//		out, err := c.Execute(context.Background(), "geo.distance", map[string]any{...})
//		...
//		out, err = c.Run(context.Background(), "geo.distance", map[string]any{...}) // unary
//		...
//	}
package sidecartest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"polyhost.dev/sidecar"
	"polyhost.dev/sidecar/gen/runtimev1"
)

// Client is a gRPC client of a sidecar.
type Client struct {
	Conn    *grpc.ClientConn
	Runtime runtimev1.NodeRuntimeClient
	Health  healthpb.HealthClient
	// Target is the address dialled, e.g. "unix:/tmp/sc123/sidecar.sock".
	Target string
}

// Start serves s on a Unix socket in a new temporary directory until the test ends, and returns
// a client connected to it.
func Start(t testing.TB, s *sidecar.Sidecar) *Client {
	t.Helper()
	// A short directory: socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "sidecar")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	lis, target, err := sidecar.Listen("unix:" + filepath.Join(dir, "sidecar.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeListener(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("sidecar: %v", err)
		}
	})
	return Dial(t, target)
}

// Dial connects to a sidecar at target (gRPC target syntax, e.g. "127.0.0.1:50051" or
// "unix:/path.sock"), without TLS unless opts give credentials. The connection is closed when
// the test ends.
func Dial(t testing.TB, target string, opts ...grpc.DialOption) *Client {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &Client{
		Conn:    conn,
		Runtime: runtimev1.NewNodeRuntimeClient(conn),
		Health:  healthpb.NewHealthClient(conn),
		Target:  target,
	}
}

// Request returns an ExecuteRequest for nodeType with params encoded as JSON (a string or
// json.RawMessage is sent as it is), the current protocol version and a first attempt's context.
func Request(nodeType string, params any) (*runtimev1.ExecuteRequest, error) {
	var text string
	switch p := params.(type) {
	case string:
		text = p
	case json.RawMessage:
		text = string(p)
	default:
		data, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("encoding the parameters: %w", err)
		}
		text = string(data)
	}
	return &runtimev1.ExecuteRequest{
		ProtocolVersion: sidecar.ProtocolVersion,
		NodeType:        nodeType,
		ParamsJson:      text,
		Context: &runtimev1.NodeContext{
			RunId:          "run-1",
			WorkflowId:     "workflow-1",
			NodeId:         "node-1",
			Attempt:        1,
			IdempotencyKey: "run-1/node-1",
		},
	}, nil
}

// Execute runs nodeType with params (see [Request]) and collects its events.
func (c *Client) Execute(ctx context.Context, nodeType string, params any, opts ...grpc.CallOption) (*Outcome, error) {
	req, err := Request(nodeType, params)
	if err != nil {
		return nil, err
	}
	return c.ExecuteRequest(ctx, req, opts...)
}

// ExecuteRequest runs req and collects its events until the stream ends. On a gRPC error it
// returns the events received so far with the error.
func (c *Client) ExecuteRequest(ctx context.Context, req *runtimev1.ExecuteRequest, opts ...grpc.CallOption) (*Outcome, error) {
	stream, err := c.Runtime.Execute(ctx, req, opts...)
	if err != nil {
		return nil, err
	}
	out := &Outcome{}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out.add(ev)
	}
}

// Run runs nodeType with params (see [Request]) through the unary Run call, which answers
// with all the events at once.
func (c *Client) Run(ctx context.Context, nodeType string, params any, opts ...grpc.CallOption) (*Outcome, error) {
	req, err := Request(nodeType, params)
	if err != nil {
		return nil, err
	}
	return c.RunRequest(ctx, req, opts...)
}

// RunRequest runs req through the unary Run call and returns its events.
func (c *Client) RunRequest(ctx context.Context, req *runtimev1.ExecuteRequest, opts ...grpc.CallOption) (*Outcome, error) {
	reply, err := c.Runtime.Run(ctx, req, opts...)
	if err != nil {
		return nil, err
	}
	out := &Outcome{}
	for _, ev := range reply.GetEvents() {
		out.add(ev)
	}
	return out, nil
}

// Outcome is what one call sent, through Execute or Run.
type Outcome struct {
	// Events are all the events, in order.
	Events []*runtimev1.ExecuteEvent
	// Output is the Result's output, nil without a Result.
	Output json.RawMessage
	// Error is the Error event, nil without one.
	Error *runtimev1.Error
}

// add appends ev to the events, noting a Result or Error.
func (o *Outcome) add(ev *runtimev1.ExecuteEvent) {
	o.Events = append(o.Events, ev)
	switch e := ev.GetEvent().(type) {
	case *runtimev1.ExecuteEvent_Result:
		o.Output = json.RawMessage(e.Result.GetOutputJson())
	case *runtimev1.ExecuteEvent_Error:
		o.Error = e.Error
	}
}

// Decode unmarshals the output into v; it fails when the call ended without a Result.
func (o *Outcome) Decode(v any) error {
	if o.Output == nil {
		if o.Error != nil {
			return fmt.Errorf("the call failed: %s: %s", o.Error.GetCode(), o.Error.GetMessage())
		}
		return errors.New("the call sent no result")
	}
	return json.Unmarshal(o.Output, v)
}

// Logs returns the messages of the log events, in order.
func (o *Outcome) Logs() []string {
	var logs []string
	for _, ev := range o.Events {
		if l := ev.GetLog(); l != nil {
			logs = append(logs, l.GetMessage())
		}
	}
	return logs
}

// Chunks returns the JSON of the chunk events, in order.
func (o *Outcome) Chunks() []json.RawMessage {
	var chunks []json.RawMessage
	for _, ev := range o.Events {
		if c := ev.GetChunk(); c != nil {
			chunks = append(chunks, json.RawMessage(c.GetDataJson()))
		}
	}
	return chunks
}
