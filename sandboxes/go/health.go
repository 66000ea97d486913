package sidecar

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthService is grpc's standard health server whose Watch streams end once the sidecar is
// shutting down and has no call left, after telling the watcher NOT_SERVING: a graceful stop
// then need not wait for the watchers.
type healthService struct {
	*health.Server
	watchesEnd chan struct{}
	endOnce    sync.Once
}

func newHealthService() *healthService {
	return &healthService{Server: health.NewServer(), watchesEnd: make(chan struct{})}
}

// endWatches ends the Watch streams.
func (h *healthService) endWatches() { h.endOnce.Do(func() { close(h.watchesEnd) }) }

// notServingWait bounds how long an ending Watch waits for its NOT_SERVING update to go out.
const notServingWait = 250 * time.Millisecond

// Watch streams the serving status of a service until the client leaves or the watches end.
func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	ws := &watchStream{Health_WatchServer: stream, ctx: ctx, watchesEnd: h.watchesEnd, told: make(chan struct{})}
	go func() {
		select {
		case <-h.watchesEnd:
		case <-ctx.Done():
			return
		}
		select {
		case <-ws.told:
		case <-time.After(notServingWait):
		case <-ctx.Done():
		}
		cancel()
	}()
	return h.Server.Watch(req, ws)
}

// watchStream is a Watch stream whose context ends with the watch, and which notes when it has
// sent an update after the watches were told to end.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx        context.Context
	watchesEnd <-chan struct{}
	told       chan struct{}
	toldOnce   sync.Once
}

func (w *watchStream) Context() context.Context { return w.ctx }

func (w *watchStream) Send(resp *healthpb.HealthCheckResponse) error {
	err := w.Health_WatchServer.Send(resp)
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		w.toldOnce.Do(func() { close(w.told) })
	}
	return err
}
