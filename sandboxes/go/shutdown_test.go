package sidecar_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"polyhost.dev/sidecar"
	"polyhost.dev/sidecar/sidecartest"
)

// serveTCP serves s on 127.0.0.1:0 until stop is called; stop returns how long the shutdown
// took and ServeListener's error.
func serveTCP(t *testing.T, s *sidecar.Sidecar) (c *sidecartest.Client, stop func() (time.Duration, error)) {
	lis, addr, err := sidecar.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeListener(ctx, lis) }()
	return sidecartest.Dial(t, addr), func() (time.Duration, error) {
		began := time.Now()
		cancel()
		err := <-served
		return time.Since(began), err
	}
}

func TestShutdownLetsRunningCallsFinish(t *testing.T) {
	s, p := newTestSidecar(t)
	c, stop := serveTCP(t, s)

	watch, err := c.Health.Watch(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}

	type result struct {
		out *sidecartest.Outcome
		err error
	}
	running := make(chan result, 1)
	go func() {
		out, err := c.Execute(ctxT(t), "t.sleep", map[string]int{"ms": 400})
		running <- result{out, err}
	}()
	<-p.sleepStarted

	stopped := make(chan time.Duration, 1)
	go func() {
		took, err := stop()
		if err != nil {
			t.Error(err)
		}
		stopped <- took
	}()
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health while shutting down: %v %v", resp, err)
	}
	_, err = c.Execute(ctxT(t), "t.echo", map[string]any{})
	assertStatus(t, err, codes.Unavailable, "")
	_, err = c.Run(ctxT(t), "t.echo", map[string]any{})
	assertStatus(t, err, codes.Unavailable, "")

	r := <-running
	if r.err != nil || r.out.Output == nil {
		t.Errorf("the running call did not finish: %v %v", r.out, r.err)
	}
	if took := <-stopped; took > 2*time.Second {
		t.Errorf("shutdown took %v", took)
	}
}

func TestShutdownCancelsCallsAfterTheGrace(t *testing.T) {
	s, _ := newTestSidecar(t, sidecar.WithShutdownGrace(200*time.Millisecond))
	c, stop := serveTCP(t, s)
	ready := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		stream, err := c.Runtime.Execute(ctxT(t), mustRequest(t, "t.hang"))
		close(ready)
		if err == nil {
			_, err = stream.Recv()
		}
		failed <- err
	}()
	ran := make(chan error, 1)
	go func() {
		_, err := c.Runtime.Run(ctxT(t), mustRequest(t, "t.hang"))
		ran <- err
	}()
	<-ready
	time.Sleep(100 * time.Millisecond) // let the calls reach the handler
	took, err := stop()
	if err != nil {
		t.Error(err)
	}
	if took < 150*time.Millisecond || took > 2*time.Second {
		t.Errorf("shutdown took %v with a grace of 200 ms", took)
	}
	if err := <-failed; err == nil {
		t.Error("the hung call did not fail")
	}
	if err := <-ran; err == nil {
		t.Error("the hung Run call did not fail")
	}
}
