package sidecar_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"polyhost.dev/sidecar"
	"polyhost.dev/sidecar/gen/runtimev1"
	"polyhost.dev/sidecar/sidecartest"
)

func withToken(ctx context.Context, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", value)
}

func TestTokenRequired(t *testing.T) {
	c, _ := start(t, sidecar.WithToken("s3cret"))
	describe := &runtimev1.DescribeRequest{ProtocolVersion: "1.1"}

	_, err := c.Runtime.Describe(ctxT(t), describe)
	assertStatus(t, err, codes.Unauthenticated, "")
	for _, wrong := range []string{"Bearer nope", "Bearer s3cret2", "s3cret", "Basic s3cret", "Bearer "} {
		_, err = c.Runtime.Describe(withToken(ctxT(t), wrong), describe)
		assertStatus(t, err, codes.Unauthenticated, "")
	}
	_, err = c.Execute(ctxT(t), "t.echo", map[string]any{})
	assertStatus(t, err, codes.Unauthenticated, "")
	_, err = c.Run(ctxT(t), "t.echo", map[string]any{})
	assertStatus(t, err, codes.Unauthenticated, "")

	ctx := withToken(ctxT(t), "Bearer s3cret")
	if _, err := c.Runtime.Describe(ctx, describe); err != nil {
		t.Errorf("Describe with the token: %v", err)
	}
	if out, err := c.Execute(ctx, "t.echo", map[string]any{}); err != nil || out.Output == nil {
		t.Errorf("Execute with the token: %v %v", out, err)
	}
	if out, err := c.Run(ctx, "t.echo", map[string]any{}); err != nil || out.Output == nil {
		t.Errorf("Run with the token: %v %v", out, err)
	}

	// Health checks need no token.
	resp, err := c.Health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without a token: %v %v", resp, err)
	}
}

func TestTokenFromTheEnvironmentWins(t *testing.T) {
	t.Setenv("POLYHOST_SIDECAR_TOKEN", "from-env")
	c, _ := start(t, sidecar.WithToken("from-option"))
	describe := &runtimev1.DescribeRequest{ProtocolVersion: "1.1"}
	_, err := c.Runtime.Describe(withToken(ctxT(t), "Bearer from-option"), describe)
	assertStatus(t, err, codes.Unauthenticated, "")
	if _, err := c.Runtime.Describe(withToken(ctxT(t), "Bearer from-env"), describe); err != nil {
		t.Error(err)
	}
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s, _ := newTestSidecar(t, sidecar.WithTLS(certFile, keyFile))
	lis, addr, err := sidecar.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.ServeListener(ctx, lis) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	c := sidecartest.Dial(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if _, err := c.Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: "1.1"}); err != nil {
		t.Errorf("over TLS: %v", err)
	}
	plain := sidecartest.Dial(t, addr)
	_, err = plain.Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: "1.1"})
	assertStatus(t, err, codes.Unavailable, "")
}

func TestTLSNeedsCertAndKey(t *testing.T) {
	t.Setenv("POLYHOST_TLS_CERT", "/nonexistent/cert.pem")
	s, _ := newTestSidecar(t)
	lis, _, err := sidecar.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServeListener(context.Background(), lis); err == nil {
		t.Error("served with a certificate and no key")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sidecar test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
