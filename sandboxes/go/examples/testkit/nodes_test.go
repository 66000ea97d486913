package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"polyhost.dev/sidecar/gen/runtimev1"
	"polyhost.dev/sidecar/sidecartest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEcho(t *testing.T) {
	c := sidecartest.Start(t, newSidecar())
	want := `{"context":{"attempt":1,"idempotency_key":"run-1/node-1","node_id":"node-1",` +
		`"run_id":"run-1","workflow_id":"workflow-1"},"params":{"a":[1,"b"],"big":12345678901234567890}}`
	for name, call := range map[string]func(context.Context, string, any, ...grpc.CallOption) (*sidecartest.Outcome, error){
		"Execute": c.Execute, "Run": c.Run,
	} {
		out, err := call(ctxT(t), "go.echo", `{"a": [1, "b"], "big": 12345678901234567890}`)
		if err != nil {
			t.Fatal(err)
		}
		if string(out.Output) != want || len(out.Events) != 1 {
			t.Errorf("%s: got  %s\nwant %s", name, out.Output, want)
		}
	}
}

func TestStream(t *testing.T) {
	c := sidecartest.Start(t, newSidecar())
	out, err := c.Execute(ctxT(t), "go.stream", map[string]int{"n": 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"line 1", `{"i":1}`, "0.33", "line 2", `{"i":2}`, "0.67", "line 3", `{"i":3}`, "1.00", `{"n":3}`}
	if got := summary(out); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// go.stream is not unary, but Run serves it too, with the same events at once.
	out, err = c.Run(ctxT(t), "go.stream", map[string]int{"n": 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(out); !slices.Equal(got, want) {
		t.Errorf("Run: got %q\nwant %q", got, want)
	}
}

// summary describes each event of out in a word.
func summary(out *sidecartest.Outcome) []string {
	var got []string
	for _, ev := range out.Events {
		switch e := ev.GetEvent().(type) {
		case *runtimev1.ExecuteEvent_Log:
			got = append(got, e.Log.GetMessage())
		case *runtimev1.ExecuteEvent_Chunk:
			got = append(got, e.Chunk.GetDataJson())
		case *runtimev1.ExecuteEvent_Progress:
			got = append(got, fmt.Sprintf("%.2f", e.Progress.GetFraction()))
		case *runtimev1.ExecuteEvent_Result:
			got = append(got, e.Result.GetOutputJson())
		}
	}
	return got
}

func TestBigFailPidSleep(t *testing.T) {
	c := sidecartest.Start(t, newSidecar())
	// go.big, go.fail and go.pid are unary: the host calls them with Run.

	out, err := c.Run(ctxT(t), "go.big", map[string]int{"bytes": 100000})
	var big struct{ Data string }
	if err != nil || out.Decode(&big) != nil || big.Data != strings.Repeat("x", 100000) {
		t.Errorf("big: %v %v", err, len(big.Data))
	}

	fail := map[string]any{"code": "quota", "message": "over quota", "field": "user", "retryable": true}
	out, err = c.Run(ctxT(t), "go.fail", fail)
	if err != nil || out.Error == nil || out.Error.GetCode() != "quota" || out.Error.GetMessage() != "over quota" ||
		out.Error.GetField() != "user" || !out.Error.GetRetryable() {
		t.Errorf("fail: %v %v", out, err)
	}

	out, err = c.Run(ctxT(t), "go.pid", map[string]any{})
	var pid struct{ PID int }
	if err != nil || out.Decode(&pid) != nil || pid.PID != os.Getpid() {
		t.Errorf("pid: %v %v", out, err)
	}

	out, err = c.Execute(ctxT(t), "go.sleep", map[string]int{"ms": 20})
	if err != nil || string(out.Output) != `{"slept_ms":20}` {
		t.Errorf("sleep: %v %v", out, err)
	}
}

func TestDescribeListsEveryNodeType(t *testing.T) {
	c := sidecartest.Start(t, newSidecar())
	resp, err := c.Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: "1.1"})
	if err != nil {
		t.Fatal(err)
	}
	var names, unary []string
	for _, nt := range resp.GetNodeTypes() {
		names = append(names, nt.GetType())
		if nt.GetUnary() {
			unary = append(unary, nt.GetType())
		}
		if s := nt.GetInputSchemaJson(); s != "" && !json.Valid([]byte(s)) {
			t.Errorf("%s: schema %s", nt.GetType(), s)
		}
	}
	want := []string{"go.echo", "go.sleep", "go.hang", "go.crash", "go.big", "go.stream", "go.fail", "go.pid"}
	if !slices.Equal(names, want) {
		t.Errorf("%v", names)
	}
	// The quick types are unary; those that stream, wait or die are not.
	if want := []string{"go.echo", "go.big", "go.fail", "go.pid"}; !slices.Equal(unary, want) {
		t.Errorf("unary types %v, want %v", unary, want)
	}
}
