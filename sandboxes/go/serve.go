package sidecar

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"polyhost.dev/sidecar/gen/runtimev1"
)

// ReadyPrefix starts the line a sidecar prints on stdout once it is listening and SERVING.
const ReadyPrefix = "POLYHOST_SIDECAR_READY"

// Shutdown causes.
var (
	errSignal     = errors.New("signal")
	errParentGone = errors.New("stdin closed: the host is gone")
)

// Serve listens and serves until SIGTERM or SIGINT (or, with POLYHOST_PARENT_WATCH=stdin,
// until stdin ends). It is ServeContext with a background context.
func (s *Sidecar) Serve() error { return s.ServeContext(context.Background()) }

// ServeOrExit calls Serve and, when it fails, prints the error as one line on stderr and exits
// with status 1. After a clean shutdown it returns.
func (s *Sidecar) ServeOrExit() {
	if err := s.Serve(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.name, err)
		os.Exit(1)
	}
}

// ServeContext runs the sidecar as a process of its own:
//
//   - it listens on POLYHOST_LISTEN, else the -listen flag, else the WithListen option, else
//     127.0.0.1:50051 (see [Listen] for the forms);
//   - it serves TLS when POLYHOST_TLS_CERT and POLYHOST_TLS_KEY are set, and requires a bearer
//     token when POLYHOST_SIDECAR_TOKEN is set (health checks excepted);
//   - once listening with health SERVING it prints "POLYHOST_SIDECAR_READY <address>" on stdout;
//   - on SIGTERM or SIGINT, or when ctx ends, it turns health NOT_SERVING, refuses new calls,
//     lets running calls finish for up to the shutdown grace (5 s; a second signal cuts it
//     short), then cancels them and returns nil;
//   - with POLYHOST_PARENT_WATCH=stdin it returns nil as soon as stdin reaches end of file,
//     cancelling running calls at once (the host that started it is gone).
//
// Unless the program has parsed its flags already, ServeContext defines -listen on
// flag.CommandLine and parses the command line (see [Sidecar.RegisterFlags]). It returns an
// error when the configuration is wrong or it cannot listen.
func (s *Sidecar) ServeContext(ctx context.Context) error {
	s.parseFlags()
	srv, err := s.newServer(os.Getenv)
	if err != nil {
		return err
	}
	lis, shown, err := Listen(s.listenAddress(os.Getenv))
	if err != nil {
		return err
	}

	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	hurry := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-signals:
			stop(fmt.Errorf("%w %v", errSignal, sig))
		case <-done:
			return
		}
		select {
		case <-signals: // a second signal ends the grace period
			close(hurry)
		case <-done:
		}
	}()

	switch watch := os.Getenv("POLYHOST_PARENT_WATCH"); watch {
	case "":
	case "stdin":
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop(errParentGone)
		}()
	default:
		srv.log.Warn("ignoring an unknown POLYHOST_PARENT_WATCH", "value", watch)
	}

	return srv.serve(ctx, lis, shown, hurry, func() {
		fmt.Fprintf(os.Stdout, "%s %s\n", ReadyPrefix, shown)
	})
}

// ServeListener serves on lis until ctx ends, then shuts down as ServeContext does (without
// signals, stdin watch or READY line): for tests, and for programs that manage their own
// listener and lifetime. The token and TLS settings come from the options and environment as
// for ServeContext.
func (s *Sidecar) ServeListener(ctx context.Context, lis net.Listener) error {
	srv, err := s.newServer(os.Getenv)
	if err != nil {
		_ = lis.Close()
		return err
	}
	return srv.serve(ctx, lis, lis.Addr().String(), nil, nil)
}

// RegisterFlags defines the -listen flag on fs. A program that parses flags of its own calls it
// before parsing; otherwise ServeContext does it on flag.CommandLine.
func (s *Sidecar) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.flagListen, "listen", "",
		"address to listen on: HOST:PORT or unix:/absolute/path.sock (default "+DefaultListen+
			"; POLYHOST_LISTEN takes precedence)")
	s.hasFlags = true
}

// parseFlags parses the command line for -listen unless the program has done so.
func (s *Sidecar) parseFlags() {
	if s.hasFlags || flag.Parsed() {
		return
	}
	if flag.Lookup("listen") == nil {
		s.RegisterFlags(flag.CommandLine)
	}
	flag.Parse()
}

// server is one gRPC server of a sidecar with its services.
type server struct {
	sc      *Sidecar
	log     *slog.Logger
	grpc    *grpc.Server
	runtime *runtimeServer
	health  *healthService
	tls     bool
	token   bool
}

// newServer builds the gRPC server from the options and the environment.
func (s *Sidecar) newServer(getenv func(string) string) (*server, error) {
	token := s.opts.token
	if t := getenv("POLYHOST_SIDECAR_TOKEN"); t != "" {
		token = t
	}
	certFile, keyFile := s.opts.tlsCert, s.opts.tlsKey
	if cert, key := getenv("POLYHOST_TLS_CERT"), getenv("POLYHOST_TLS_KEY"); cert != "" || key != "" {
		certFile, keyFile = cert, key
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("TLS needs both a certificate and a key (POLYHOST_TLS_CERT and POLYHOST_TLS_KEY)")
	}

	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.opts.maxRecvBytes),
		// Let the host keep idle connections alive with pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
	}
	if certFile != "" {
		creds, err := credentials.NewServerTLSFromFile(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	if token != "" {
		auth := newTokenAuth(token)
		opts = append(opts, grpc.ChainUnaryInterceptor(auth.unary), grpc.ChainStreamInterceptor(auth.stream))
	}

	s.startServing()
	log := s.logger()
	srv := &server{
		sc:      s,
		log:     log,
		grpc:    grpc.NewServer(opts...),
		runtime: newRuntimeServer(s, log),
		health:  newHealthService(),
		tls:     certFile != "",
		token:   token != "",
	}
	runtimev1.RegisterNodeRuntimeServer(srv.grpc, srv.runtime)
	healthpb.RegisterHealthServer(srv.grpc, srv.health)
	return srv, nil
}

// serve serves on lis until ctx ends, calling ready once health is SERVING, then shuts down.
// Closing hurry ends the shutdown's grace period early.
func (srv *server) serve(ctx context.Context, lis net.Listener, shown string, hurry <-chan struct{}, ready func()) error {
	served := make(chan error, 1)
	go func() { served <- srv.grpc.Serve(lis) }()
	srv.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	srv.health.SetServingStatus(runtimev1.NodeRuntime_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	srv.log.Info("serving", "address", shown, "node_types", len(srv.sc.NodeTypes()),
		"tls", srv.tls, "token", srv.token)
	if ready != nil {
		ready()
	}

	select {
	case err := <-served:
		srv.health.Shutdown()
		srv.grpc.Stop()
		return fmt.Errorf("serving on %s: %w", shown, err)
	case <-ctx.Done():
	}

	cause := context.Cause(ctx)
	grace := srv.sc.opts.grace
	if errors.Is(cause, errParentGone) {
		grace = 0
	}
	srv.log.Info("shutting down", "reason", cause.Error())
	srv.health.Shutdown()
	idle := srv.runtime.calls.drain()
	stopped := make(chan struct{})
	go func() {
		srv.grpc.GracefulStop() // stops accepting and tells clients to go away
		close(stopped)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-idle:
		// No call runs: end the health watches and let the graceful stop finish sending.
		srv.health.endWatches()
		select {
		case <-stopped:
		case <-timer.C:
		case <-hurry:
		}
	case <-stopped:
	case <-timer.C:
		if grace > 0 {
			srv.log.Warn("cancelling the calls still running after the grace period", "grace", grace)
		}
	case <-hurry:
		srv.log.Warn("cancelling the running calls on a second signal")
	}
	srv.grpc.Stop() // cancels what still runs, and ends health watches
	<-stopped
	<-served
	return nil
}
