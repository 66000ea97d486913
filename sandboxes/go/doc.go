// Package sidecar is the Go SDK for polyhost sidecars: processes that run node types for a
// polyhost host and serve them over gRPC (the polyhost.runtime.v1.NodeRuntime service, plus
// the standard grpc.health.v1.Health service).
//
// A sidecar is a name, a few node types and their handlers:
//
//	s := sidecar.New("geo")
//	s.Node(sidecar.NodeType{Type: "geo.distance", Description: "...", InputSchema: `{...}`},
//		func(ctx context.Context, call *sidecar.Call) (any, error) {
//			var p DistanceParams
//			if err := call.Decode(&p); err != nil {
//				return nil, err
//			}
//			call.Log(sidecar.Info, "measuring")
//			return map[string]any{"km": km(p)}, nil
//		})
//	s.ServeOrExit()
//
// A handler gets the call's context (cancelled when the host cancels the call or its deadline
// passes) and a [Call] to decode its parameters, read its [NodeContext] and stream logs, chunks
// and progress reports. It returns a JSON object (a map or a struct) or an error; a [NodeError]
// reaches the host with its code, field and retryable flag, any other error as
// "handler_error", and a panic as "handler_panic" without stopping the sidecar.
//
// The host runs a call through the Execute stream, which sends the handler's events as they
// come, or, for a node type declared [NodeType].Unary (quick nodes whose logs need not arrive
// live), through the unary Run, which answers once with the same events.
//
// [Sidecar.Serve] takes its configuration from the environment a managing host sets
// (POLYHOST_LISTEN, POLYHOST_SIDECAR_TOKEN, POLYHOST_TLS_CERT, POLYHOST_TLS_KEY,
// POLYHOST_PARENT_WATCH), handles SIGTERM and SIGINT, and prints
// "POLYHOST_SIDECAR_READY <address>" on stdout once it is listening and healthy.
package sidecar
