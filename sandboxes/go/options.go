package sidecar

import (
	"log/slog"
	"os"
	"time"
)

// Option configures a [Sidecar]; see [New].
type Option func(*options)

type options struct {
	listen          string
	token           string
	tlsCert         string
	tlsKey          string
	protocolVersion string
	grace           time.Duration
	logger          *slog.Logger
	maxRecvBytes    int
}

func defaultOptions() options {
	return options{
		protocolVersion: ProtocolVersion,
		grace:           5 * time.Second,
		maxRecvBytes:    64 << 20,
	}
}

// WithListen sets the address to listen on when neither POLYHOST_LISTEN nor the -listen flag
// gives one: "HOST:PORT" or "unix:/absolute/path.sock". The default is 127.0.0.1:50051.
func WithListen(addr string) Option { return func(o *options) { o.listen = addr } }

// WithToken requires every call but health checks to carry the metadata
// "authorization: Bearer <token>". POLYHOST_SIDECAR_TOKEN, when set, takes precedence.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS serves TLS with the given PEM certificate and key files. POLYHOST_TLS_CERT and
// POLYHOST_TLS_KEY, when set, take precedence.
func WithTLS(certFile, keyFile string) Option {
	return func(o *options) { o.tlsCert, o.tlsKey = certFile, keyFile }
}

// WithShutdownGrace sets how long running calls may go on after SIGTERM or SIGINT before they
// are cancelled (default 5 s).
func WithShutdownGrace(d time.Duration) Option { return func(o *options) { o.grace = d } }

// WithLogger sets the logger for the sidecar's own messages (default: text on stderr).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMaxRecvBytes sets the largest request the sidecar accepts (default 64 MiB).
func WithMaxRecvBytes(n int) Option { return func(o *options) { o.maxRecvBytes = n } }

// WithProtocolVersion makes Describe report version instead of [ProtocolVersion]. It exists
// for testing a host's version check; requests are still checked against ProtocolVersion.
func WithProtocolVersion(version string) Option {
	return func(o *options) { o.protocolVersion = version }
}

// logger returns the configured logger or the default one on stderr.
func (s *Sidecar) logger() *slog.Logger {
	if s.opts.logger != nil {
		return s.opts.logger
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("sidecar", s.name)
}
