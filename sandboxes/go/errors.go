package sidecar

import (
	"errors"
	"fmt"
)

// NodeError is the typed failure of a node: a handler that returns one (directly, as a pointer,
// or wrapped) reports its code, message, field and retryable flag to the host as they are.
//
//	return nil, sidecar.NodeError{Code: "invalid_input", Field: "from.lat",
//		Message: "from.lat must be between -90 and 90"}
type NodeError struct {
	// Code is stable and snake_case, e.g. "invalid_input"; "handler_error" when empty.
	Code string
	// Message is for people.
	Message string
	// Field names the parameter at fault, if any (e.g. "from.lat", "points[2].lon").
	Field string
	// Retryable tells the host that another attempt may succeed.
	Retryable bool
}

// Error implements error.
func (e NodeError) Error() string {
	msg := e.code() + ": " + e.Message
	if e.Field != "" {
		msg += fmt.Sprintf(" (field %s)", e.Field)
	}
	return msg
}

func (e NodeError) code() string {
	if e.Code == "" {
		return codeHandlerError
	}
	return e.Code
}

// Error codes the SDK itself reports.
const (
	codeUnknownNodeType   = "unknown_node_type"
	codeInvalidParameters = "invalid_parameters"
	codeInvalidOutput     = "invalid_output"
	codeHandlerError      = "handler_error"
	codeHandlerPanic      = "handler_panic"
)

// asNodeError finds a NodeError (value or pointer) in err's chain.
func asNodeError(err error) (NodeError, bool) {
	var ptr *NodeError
	if errors.As(err, &ptr) && ptr != nil {
		return *ptr, true
	}
	var val NodeError
	if errors.As(err, &val) {
		return val, true
	}
	return NodeError{}, false
}
