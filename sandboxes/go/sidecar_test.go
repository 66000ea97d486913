package sidecar_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"polyhost.dev/sidecar"
	"polyhost.dev/sidecar/gen/runtimev1"
	"polyhost.dev/sidecar/sidecartest"
)

// probe lets tests watch the handlers of newTestSidecar.
type probe struct {
	sleepStarted   chan sidecar.NodeContext
	sleepCancelled chan error
	release        chan struct{} // ends t.hang
}

// newTestSidecar returns a sidecar with node types that exercise the SDK.
func newTestSidecar(t *testing.T, opts ...sidecar.Option) (*sidecar.Sidecar, *probe) {
	p := &probe{
		sleepStarted:   make(chan sidecar.NodeContext, 100),
		sleepCancelled: make(chan error, 100),
		release:        make(chan struct{}),
	}
	t.Cleanup(func() { close(p.release) })
	opts = append([]sidecar.Option{sidecar.WithLogger(testLogger(t))}, opts...)
	s := sidecar.New("test", opts...)
	s.Node(sidecar.NodeType{
		Type:         "t.echo",
		Description:  "echoes",
		InputSchema:  `{"type":"object"}`,
		OutputSchema: `{"type":"object","required":["params"]}`,
		Ports:        []string{"left", "right"},
		PortField:    "port",
		Metadata:     map[string]string{"owner": "tests"},
		Unary:        true,
	}, func(_ context.Context, call *sidecar.Call) (any, error) {
		return map[string]any{"params": call.Params(), "context": call.Context(), "type": call.NodeType()}, nil
	})
	s.Node(sidecar.NodeType{Type: "t.stream"}, func(_ context.Context, call *sidecar.Call) (any, error) {
		var in struct{ N int }
		if err := call.Decode(&in); err != nil {
			return nil, err
		}
		for i := 1; i <= in.N; i++ {
			call.Logf(sidecar.Warning, "line %d", i)
			if err := call.Chunk(map[string]any{"i": i, "html": "<&>"}); err != nil {
				return nil, err
			}
			call.Progress(float64(i)/float64(in.N), fmt.Sprint(i))
		}
		return map[string]int{"n": in.N}, nil
	})
	s.Node(sidecar.NodeType{Type: "t.fail"}, func(context.Context, *sidecar.Call) (any, error) {
		return nil, sidecar.NodeError{Code: "out_of_stock", Message: "none left", Field: "sku", Retryable: true}
	})
	s.Node(sidecar.NodeType{Type: "t.failwrapped"}, func(context.Context, *sidecar.Call) (any, error) {
		return nil, fmt.Errorf("looking up: %w", &sidecar.NodeError{Code: "not_found", Message: "no such sku"})
	})
	s.Node(sidecar.NodeType{Type: "t.plain"}, func(context.Context, *sidecar.Call) (any, error) {
		return nil, errors.New("disk on fire")
	})
	s.Node(sidecar.NodeType{Type: "t.panic"}, func(context.Context, *sidecar.Call) (any, error) {
		panic("kaboom")
	})
	s.Node(sidecar.NodeType{Type: "t.array"}, func(context.Context, *sidecar.Call) (any, error) {
		return []int{1, 2}, nil
	})
	s.Node(sidecar.NodeType{Type: "t.nil"}, func(context.Context, *sidecar.Call) (any, error) {
		return nil, nil
	})
	s.Node(sidecar.NodeType{Type: "t.decode"}, func(_ context.Context, call *sidecar.Call) (any, error) {
		var in struct {
			Item struct {
				Count int `json:"count"`
			} `json:"item"`
		}
		if err := call.Decode(&in); err != nil {
			return nil, err
		}
		return map[string]int{"count": in.Item.Count}, nil
	})
	s.Node(sidecar.NodeType{Type: "t.sleep"}, func(ctx context.Context, call *sidecar.Call) (any, error) {
		var in struct{ MS int }
		if err := call.Decode(&in); err != nil {
			return nil, err
		}
		p.sleepStarted <- call.Context()
		select {
		case <-time.After(time.Duration(in.MS) * time.Millisecond):
			return map[string]int{"slept_ms": in.MS}, nil
		case <-ctx.Done():
			p.sleepCancelled <- ctx.Err()
			return nil, sidecar.NodeError{Code: "cancelled", Message: "cancelled"}
		}
	})
	s.Node(sidecar.NodeType{Type: "t.hang"}, func(context.Context, *sidecar.Call) (any, error) {
		<-p.release
		return nil, errors.New("released")
	})
	s.Node(sidecar.NodeType{Type: "t.late"}, func(_ context.Context, call *sidecar.Call) (any, error) {
		go func() {
			time.Sleep(50 * time.Millisecond)
			call.Log(sidecar.Info, "too late")
			p.sleepCancelled <- call.Chunk(1)
		}()
		return map[string]any{}, nil
	})
	return s, p
}

func start(t *testing.T, opts ...sidecar.Option) (*sidecartest.Client, *probe) {
	s, p := newTestSidecar(t, opts...)
	return sidecartest.Start(t, s), p
}

// method is one way to run a call: the Execute stream or the unary Run.
type method struct {
	name    string
	call    func(*sidecartest.Client, context.Context, string, any, ...grpc.CallOption) (*sidecartest.Outcome, error)
	request func(*sidecartest.Client, context.Context, *runtimev1.ExecuteRequest, ...grpc.CallOption) (*sidecartest.Outcome, error)
}

var methods = []method{
	{"Execute", (*sidecartest.Client).Execute, (*sidecartest.Client).ExecuteRequest},
	{"Run", (*sidecartest.Client).Run, (*sidecartest.Client).RunRequest},
}

// eachMethod runs test as a subtest for Execute and for Run: both have the same semantics.
func eachMethod(t *testing.T, test func(t *testing.T, m method)) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) { test(t, m) })
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDescribe(t *testing.T) {
	c, _ := start(t)
	resp, err := c.Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: "1.1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetProtocolVersion() != "1.1" || resp.GetName() != "test" || resp.GetSdk() != "polyhost-go/0.1.0" {
		t.Errorf("versions and name: %v", resp)
	}
	var names []string
	for _, nt := range resp.GetNodeTypes() {
		names = append(names, nt.GetType())
	}
	if names[0] != "t.echo" || len(names) != 12 {
		t.Errorf("node types in registration order: %v", names)
	}
	echo := resp.GetNodeTypes()[0]
	if echo.GetDescription() != "echoes" || echo.GetInputSchemaJson() != `{"type":"object"}` ||
		echo.GetOutputSchemaJson() != `{"type":"object","required":["params"]}` ||
		!slices.Equal(echo.GetPorts(), []string{"left", "right"}) || echo.GetPortField() != "port" ||
		echo.GetMetadata()["owner"] != "tests" || !echo.GetUnary() {
		t.Errorf("echo spec: %v", echo)
	}
	if schema := resp.GetNodeTypes()[1].GetInputSchemaJson(); schema != "" {
		t.Errorf("a type without schema has %q", schema)
	}
	for _, nt := range resp.GetNodeTypes()[1:] {
		if nt.GetUnary() {
			t.Errorf("%s is unary", nt.GetType())
		}
	}

	health, err := c.Health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v, %v", health, err)
	}
}

func TestServesOverTCP(t *testing.T) {
	s, _ := newTestSidecar(t)
	lis, addr, err := sidecar.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("address %q", addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeListener(ctx, lis) }()
	c := sidecartest.Dial(t, addr)
	out, err := c.Execute(ctxT(t), "t.echo", map[string]any{"a": 1})
	if err != nil || out.Output == nil {
		t.Fatalf("echo over TCP: %v %v", out, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

func TestEcho(t *testing.T) {
	c, _ := start(t)
	req, _ := sidecartest.Request("t.echo", `{"name": "ada", "n": [1, 2.5, {"x": null}]}`)
	req.Context = &runtimev1.NodeContext{
		RunId: "r1", WorkflowId: "w1", NodeId: "n1", Attempt: 3, IdempotencyKey: "k1", DeadlineUnix: 2000000000.5,
	}
	out, err := c.ExecuteRequest(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) != 1 {
		t.Fatalf("events: %v", out.Events)
	}
	var got struct {
		Params  map[string]any
		Context sidecar.NodeContext
		Type    string
	}
	if err := out.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Params["name"] != "ada" || fmt.Sprint(got.Params["n"]) != "[1 2.5 map[x:<nil>]]" || got.Type != "t.echo" {
		t.Errorf("params: %v", got)
	}
	want := sidecar.NodeContext{RunID: "r1", WorkflowID: "w1", NodeID: "n1", Attempt: 3, IdempotencyKey: "k1",
		Deadline: time.Unix(2000000000, 500000000)}
	if !got.Context.Deadline.Equal(want.Deadline) {
		t.Errorf("deadline %v, want %v", got.Context.Deadline, want.Deadline)
	}
	got.Context.Deadline = want.Deadline
	if got.Context != want {
		t.Errorf("context %+v, want %+v", got.Context, want)
	}
}

func TestStreamEventsInOrder(t *testing.T) {
	c, _ := start(t)
	out, err := c.Execute(ctxT(t), "t.stream", map[string]int{"n": 4})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range out.Events {
		switch e := ev.GetEvent().(type) {
		case *runtimev1.ExecuteEvent_Log:
			kinds = append(kinds, fmt.Sprintf("log:%s:%s", e.Log.GetLevel(), e.Log.GetMessage()))
		case *runtimev1.ExecuteEvent_Chunk:
			kinds = append(kinds, "chunk:"+e.Chunk.GetDataJson())
		case *runtimev1.ExecuteEvent_Progress:
			kinds = append(kinds, fmt.Sprintf("progress:%g:%s", e.Progress.GetFraction(), e.Progress.GetMessage()))
		case *runtimev1.ExecuteEvent_Result:
			kinds = append(kinds, "result:"+e.Result.GetOutputJson())
		default:
			kinds = append(kinds, fmt.Sprintf("other:%v", ev))
		}
	}
	var want []string
	for i := 1; i <= 4; i++ {
		want = append(want,
			fmt.Sprintf("log:WARNING:line %d", i),
			fmt.Sprintf(`chunk:{"html":"<&>","i":%d}`, i),
			fmt.Sprintf("progress:%g:%d", float64(i)/4, i))
	}
	want = append(want, `result:{"n":4}`)
	if !slices.Equal(kinds, want) {
		t.Errorf("events:\n got %q\nwant %q", kinds, want)
	}
}

func TestRunGivesTheSameEventsAsExecute(t *testing.T) {
	c, _ := start(t)
	for _, tc := range []struct {
		node   string
		params any
	}{
		{"t.stream", map[string]int{"n": 5}},
		{"t.stream", map[string]int{"n": 0}},
		{"t.echo", map[string]any{"a": []any{1, "b", nil}}},
		{"t.fail", map[string]any{}},
		{"t.decode", `{"item": {"count": "three"}}`},
	} {
		// No deadline: t.echo's output shows it, and two calls' deadlines differ.
		streamed, err := c.Execute(context.Background(), tc.node, tc.params)
		if err != nil {
			t.Fatal(err)
		}
		ran, err := c.Run(context.Background(), tc.node, tc.params)
		if err != nil {
			t.Fatal(err)
		}
		if len(ran.Events) != len(streamed.Events) {
			t.Fatalf("%s %v: Run gave %d events, Execute %d:\n%v\n%v",
				tc.node, tc.params, len(ran.Events), len(streamed.Events), ran.Events, streamed.Events)
		}
		for i := range ran.Events {
			if !proto.Equal(ran.Events[i], streamed.Events[i]) {
				t.Errorf("%s %v: event %d: Run %v, Execute %v", tc.node, tc.params, i, ran.Events[i], streamed.Events[i])
			}
		}
		last := ran.Events[len(ran.Events)-1]
		if last.GetResult() == nil && last.GetError() == nil {
			t.Errorf("%s: the last event is %v", tc.node, last)
		}
	}

	// A Run with many events in one reply.
	out, err := c.Run(ctxT(t), "t.stream", map[string]int{"n": 1000})
	if err != nil || len(out.Events) != 3001 || len(out.Logs()) != 1000 || len(out.Chunks()) != 1000 ||
		string(out.Output) != `{"n":1000}` {
		t.Errorf("n=1000: %d events, %v", len(out.Events), err)
	}
}

func TestRunNeedsNoUnaryDeclaration(t *testing.T) {
	// Unary is a hint to the host: Run serves every node type, Execute serves unary ones.
	c, _ := start(t)
	if out, err := c.Run(ctxT(t), "t.stream", map[string]int{"n": 2}); err != nil || len(out.Events) != 7 {
		t.Errorf("Run of a streaming type: %v %v", out, err)
	}
	if out, err := c.Execute(ctxT(t), "t.echo", map[string]any{}); err != nil || out.Output == nil {
		t.Errorf("Execute of a unary type: %v %v", out, err)
	}
}

func TestTypedErrors(t *testing.T) { eachMethod(t, testTypedErrors) }

func testTypedErrors(t *testing.T, m method) {
	c, _ := start(t)
	cases := []struct {
		node string
		want *runtimev1.Error
	}{
		{"t.fail", &runtimev1.Error{Code: "out_of_stock", Message: "none left", Field: "sku", Retryable: true}},
		{"t.failwrapped", &runtimev1.Error{Code: "not_found", Message: "no such sku"}},
		{"t.plain", &runtimev1.Error{Code: "handler_error", Message: "disk on fire"}},
	}
	for _, tc := range cases {
		out, err := m.call(c, ctxT(t), tc.node, map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		assertOnlyError(t, out, tc.want.GetCode())
		got := out.Error
		if got.GetMessage() != tc.want.GetMessage() || got.GetField() != tc.want.GetField() ||
			got.GetRetryable() != tc.want.GetRetryable() {
			t.Errorf("%s: got %v, want %v", tc.node, got, tc.want)
		}
	}
}

func TestInvalidOutput(t *testing.T) { eachMethod(t, testInvalidOutput) }

func testInvalidOutput(t *testing.T, m method) {
	c, _ := start(t)
	for _, node := range []string{"t.array", "t.nil"} {
		out, err := m.call(c, ctxT(t), node, map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		assertOnlyError(t, out, "invalid_output")
	}
}

func TestUnknownNodeType(t *testing.T) { eachMethod(t, testUnknownNodeType) }

func testUnknownNodeType(t *testing.T, m method) {
	c, _ := start(t)
	out, err := m.call(c, ctxT(t), "t.nope", map[string]any{})
	if err != nil {
		t.Fatalf("the call must end with status OK: %v", err)
	}
	assertOnlyError(t, out, "unknown_node_type")
	msg := out.Error.GetMessage()
	if !strings.Contains(msg, `"t.nope"`) || !strings.Contains(msg, "t.echo, t.fail, t.failwrapped") || out.Error.GetRetryable() {
		t.Errorf("message %q", msg)
	}
}

func TestInvalidParameters(t *testing.T) { eachMethod(t, testInvalidParameters) }

func testInvalidParameters(t *testing.T, m method) {
	c, _ := start(t)
	for _, params := range []string{"", "not json", "[1, 2]", "null", `"x"`, `{"a":`, `{"a": 1} {}`} {
		out, err := m.call(c, ctxT(t), "t.echo", params)
		if err != nil {
			t.Fatal(err)
		}
		assertOnlyError(t, out, "invalid_parameters")
		if out.Error.GetField() != "" {
			t.Errorf("%q: field %q", params, out.Error.GetField())
		}
	}
}

func TestDecodeNamesTheField(t *testing.T) {
	c, _ := start(t)
	out, err := c.Execute(ctxT(t), "t.decode", `{"item": {"count": "three"}}`)
	if err != nil {
		t.Fatal(err)
	}
	assertOnlyError(t, out, "invalid_parameters")
	if out.Error.GetField() != "item.count" {
		t.Errorf("field %q (%s)", out.Error.GetField(), out.Error.GetMessage())
	}
}

func TestWrongProtocolMajor(t *testing.T) {
	c, _ := start(t)
	_, err := c.Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: "2.0"})
	assertStatus(t, err, codes.FailedPrecondition, "protocol version 2.0 is not supported; this sidecar speaks 1.1")
	for _, v := range []string{"1.0", "1.7"} { // another minor version of 1 is fine
		if _, err := c.Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: v}); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}

	eachMethod(t, func(t *testing.T, m method) {
		req := mustRequest(t, "t.echo")
		for _, v := range []string{"0.9", "2.1", ""} {
			req.ProtocolVersion = v
			_, err := m.request(c, ctxT(t), req)
			assertStatus(t, err, codes.FailedPrecondition,
				fmt.Sprintf("protocol version %s is not supported; this sidecar speaks 1.1", v))
		}
		for _, v := range []string{"1.0", "1.1", "1.3"} {
			req.ProtocolVersion = v
			if out, err := m.request(c, ctxT(t), req); err != nil || out.Output == nil {
				t.Errorf("%s: %v %v", v, out, err)
			}
		}
	})
}

func TestReportedProtocolVersion(t *testing.T) {
	c, _ := start(t, sidecar.WithProtocolVersion("2.0"))
	resp, err := c.Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: "1.1"})
	if err != nil || resp.GetProtocolVersion() != "2.0" {
		t.Errorf("%v %v", resp, err)
	}
}

func TestPanicIsReportedAndServerSurvives(t *testing.T) {
	eachMethod(t, testPanicIsReportedAndServerSurvives)
}

func testPanicIsReportedAndServerSurvives(t *testing.T, m method) {
	c, _ := start(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			out, err := m.call(c, ctxT(t), "t.panic", map[string]any{})
			if err != nil {
				t.Error(err)
				return
			}
			assertOnlyError(t, out, "handler_panic")
			if !strings.Contains(out.Error.GetMessage(), "kaboom") {
				t.Errorf("message %q", out.Error.GetMessage())
			}
		})
	}
	wg.Wait()
	for _, other := range methods {
		if out, err := other.call(c, ctxT(t), "t.echo", map[string]any{}); err != nil || out.Output == nil {
			t.Errorf("%s after the panics: %v %v", other.name, out, err)
		}
	}
}

func TestCancellationReachesTheHandler(t *testing.T) {
	eachMethod(t, testCancellationReachesTheHandler)
}

func testCancellationReachesTheHandler(t *testing.T, m method) {
	c, p := start(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() {
		_, err := m.call(c, ctx, "t.sleep", map[string]int{"ms": 10000})
		done <- err
	}()
	<-p.sleepStarted
	began := time.Now()
	cancel()
	select {
	case err := <-p.sleepCancelled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler saw %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the handler was not cancelled")
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("cancellation took %v", took)
	}
	assertStatus(t, <-done, codes.Canceled, "")
}

func TestDeadlineReachesTheHandler(t *testing.T) { eachMethod(t, testDeadlineReachesTheHandler) }

func testDeadlineReachesTheHandler(t *testing.T, m method) {
	c, p := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := m.call(c, ctx, "t.sleep", map[string]int{"ms": 10000})
	assertStatus(t, err, codes.DeadlineExceeded, "")
	info := <-p.sleepStarted
	if info.Deadline.IsZero() || time.Until(info.Deadline) > time.Second {
		t.Errorf("the call's deadline is not in the node context: %v", info.Deadline)
	}
	select {
	case err := <-p.sleepCancelled:
		// The server's timer or the client's cancellation, whichever comes first.
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Errorf("handler saw %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the handler did not see the deadline")
	}
}

func TestCallsRunConcurrently(t *testing.T) {
	c, _ := start(t)
	began := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			out, err := c.Execute(ctxT(t), "t.sleep", map[string]int{"ms": 300})
			if err != nil || out.Output == nil {
				t.Errorf("%v %v", out, err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("20 calls of 300 ms took %v", took)
	}
}

func TestEventsAfterTheEndAreDropped(t *testing.T) { eachMethod(t, testEventsAfterTheEndAreDropped) }

func testEventsAfterTheEndAreDropped(t *testing.T, m method) {
	c, p := start(t)
	out, err := m.call(c, ctxT(t), "t.late", map[string]any{})
	if err != nil || len(out.Events) != 1 || out.Output == nil {
		t.Fatalf("%v %v", out, err)
	}
	if err := <-p.sleepCancelled; err == nil {
		t.Error("a chunk after the end was accepted")
	}
}

// assertOnlyError checks that the call sent exactly one event, an Error with code.
func assertOnlyError(t *testing.T, out *sidecartest.Outcome, code string) {
	t.Helper()
	if len(out.Events) != 1 || out.Error == nil {
		t.Fatalf("want one %s error, got %v", code, out.Events)
	}
	if out.Error.GetCode() != code {
		t.Errorf("code %q (%s), want %q", out.Error.GetCode(), out.Error.GetMessage(), code)
	}
}

// assertStatus checks err's gRPC code and, unless msg is empty, its message.
func assertStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || (msg != "" && st.Message() != msg) {
		t.Errorf("status %v %q, want %v %q", st.Code(), st.Message(), code, msg)
	}
}

// testLogger logs the sidecar's messages to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func mustRequest(t *testing.T, nodeType string) *runtimev1.ExecuteRequest {
	req, err := sidecartest.Request(nodeType, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	return req
}
