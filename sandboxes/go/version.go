package sidecar

import (
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// ProtocolVersion is the version of the sidecar protocol this SDK speaks. Requests of any
	// 1.x version are served.
	ProtocolVersion = "1.1"
	// Version is the version of this SDK.
	Version = "0.1.0"
	// SDK names this SDK in Describe responses.
	SDK = "polyhost-go/" + Version
)

// checkProtocol refuses a request whose protocol major version (the text before the first '.')
// differs from this SDK's.
func checkProtocol(requested string) error {
	major, _, _ := strings.Cut(requested, ".")
	want, _, _ := strings.Cut(ProtocolVersion, ".")
	if major != want {
		return status.Errorf(codes.FailedPrecondition,
			"protocol version %s is not supported; this sidecar speaks %s", requested, ProtocolVersion)
	}
	return nil
}
