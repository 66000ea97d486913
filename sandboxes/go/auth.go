package sidecar

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// healthPrefix is the method prefix of the health service, which needs no token.
const healthPrefix = "/grpc.health.v1.Health/"

// tokenAuth requires the metadata "authorization: Bearer <token>" on every call but health
// checks. Tokens are compared through their SHA-256 digests, in constant time.
type tokenAuth struct {
	digest [sha256.Size]byte
}

func newTokenAuth(token string) *tokenAuth {
	return &tokenAuth{digest: sha256.Sum256([]byte(token))}
}

// check accepts ctx when it carries the token.
func (a *tokenAuth) check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	ok := 0
	for _, value := range md.Get("authorization") {
		if token, found := strings.CutPrefix(value, "Bearer "); found {
			got := sha256.Sum256([]byte(token))
			ok |= subtle.ConstantTimeCompare(got[:], a.digest[:])
		}
	}
	if ok != 1 {
		return status.Error(codes.Unauthenticated, "missing or invalid bearer token")
	}
	return nil
}

func (a *tokenAuth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, healthPrefix) {
		if err := a.check(ctx); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

func (a *tokenAuth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, healthPrefix) {
		if err := a.check(ss.Context()); err != nil {
			return err
		}
	}
	return handler(srv, ss)
}
