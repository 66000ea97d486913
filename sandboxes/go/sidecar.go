package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"

	"polyhost.dev/sidecar/gen/runtimev1"
)

// Handler runs one attempt of a node. ctx is cancelled when the host cancels the call or its
// deadline passes; call carries the parameters, the node context and the means to stream
// events. It returns the node's output, which must encode to a JSON object (a map or a
// struct), or an error (see [NodeError]).
type Handler func(ctx context.Context, call *Call) (any, error)

// NodeType describes a node type offered by the sidecar, as the host's catalog shows it.
type NodeType struct {
	// Type names the node type, unique within the host, e.g. "geo.distance".
	Type string
	// Description says what the node does.
	Description string
	// InputSchema is the JSON Schema of the parameters, as JSON text ("" accepts any object).
	// The host validates parameters against it before the call.
	InputSchema string
	// OutputSchema is the JSON Schema of the output, as JSON text ("" accepts any object).
	OutputSchema string
	// Ports lists the output ports besides "out" and "error".
	Ports []string
	// PortField names the output field that tells which port the node took, if any.
	PortField string
	// Metadata is free-form key/value information for the catalog.
	Metadata map[string]string
	// Unary lets the host call the node with one unary Run round trip instead of an Execute
	// stream: for quick nodes whose logs, chunks and progress reports need not arrive live
	// (with Run they all arrive at once, with the result). The handler is the same either way.
	Unary bool
}

// spec is the protocol form of t.
func (t NodeType) spec() *runtimev1.NodeTypeSpec {
	return &runtimev1.NodeTypeSpec{
		Type:             t.Type,
		Description:      t.Description,
		InputSchemaJson:  t.InputSchema,
		OutputSchemaJson: t.OutputSchema,
		Ports:            slices.Clone(t.Ports),
		PortField:        t.PortField,
		Metadata:         maps.Clone(t.Metadata),
		Unary:            t.Unary,
	}
}

// Sidecar is a named set of node types and their handlers, served over gRPC.
// Register every node type with [Sidecar.Node] before serving.
type Sidecar struct {
	name string
	opts options

	mu       sync.RWMutex
	types    []NodeType
	handlers map[string]Handler
	serving  bool

	flagListen string // from the -listen flag, see RegisterFlags
	hasFlags   bool
}

// New returns a sidecar called name (shown in the host's logs) with the given options.
func New(name string, opts ...Option) *Sidecar {
	s := &Sidecar{name: name, handlers: map[string]Handler{}, opts: defaultOptions()}
	for _, opt := range opts {
		opt(&s.opts)
	}
	return s
}

// Name returns the sidecar's name.
func (s *Sidecar) Name() string { return s.name }

// Node registers a node type and its handler. It panics when the type is empty or already
// registered, when a schema is not valid JSON, or when the sidecar is already serving:
// these are mistakes in the program, found at its start.
func (s *Sidecar) Node(t NodeType, h Handler) {
	if t.Type == "" {
		panic("sidecar: node type with an empty Type")
	}
	if h == nil {
		panic(fmt.Sprintf("sidecar: node type %s has a nil handler", t.Type))
	}
	for what, schema := range map[string]string{"InputSchema": t.InputSchema, "OutputSchema": t.OutputSchema} {
		if schema != "" && !json.Valid([]byte(schema)) {
			panic(fmt.Sprintf("sidecar: node type %s: %s is not valid JSON", t.Type, what))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		panic(fmt.Sprintf("sidecar: node type %s registered after the sidecar started serving", t.Type))
	}
	if _, dup := s.handlers[t.Type]; dup {
		panic(fmt.Sprintf("sidecar: node type %s registered twice", t.Type))
	}
	t.Ports = slices.Clone(t.Ports)
	t.Metadata = maps.Clone(t.Metadata)
	s.types = append(s.types, t)
	s.handlers[t.Type] = h
}

// NodeTypes returns the registered node types, in registration order.
func (s *Sidecar) NodeTypes() []NodeType {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.types)
}

// handler returns the handler of nodeType.
func (s *Sidecar) handler(nodeType string) (Handler, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, ok := s.handlers[nodeType]
	return h, ok
}

// typeNames returns the registered type names, sorted.
func (s *Sidecar) typeNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.handlers))
}

// startServing closes registration.
func (s *Sidecar) startServing() {
	s.mu.Lock()
	s.serving = true
	s.mu.Unlock()
}
