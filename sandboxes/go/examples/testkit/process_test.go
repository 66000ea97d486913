package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"polyhost.dev/sidecar/gen/runtimev1"
	"polyhost.dev/sidecar/sidecartest"
)

// These tests build the testkit and run it as a host does.

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// testkitBinary builds the testkit once per test run.
func testkitBinary(t *testing.T) string {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "testkit")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "testkit-sidecar")
		cmd := exec.Command("go", "build", "-o", binary, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// process is a running testkit.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the lines of stdout
	stderr *syncBuffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// startTestkit starts the testkit with env added to the environment.
func startTestkit(t *testing.T, env ...string) *process {
	cmd := exec.Command(testkitBinary(t))
	cmd.Env = append(os.Environ(), env...)
	p := &process{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{}), lines: make(chan string, 16)}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		// Wait closes the pipes once the process exits: read stdout first.
		scanner := bufio.NewScanner(stdout)
		n := 0
		for scanner.Scan() {
			if n++; n > 1 {
				t.Errorf("more than one line on stdout: %q", scanner.Text())
				continue
			}
			p.lines <- scanner.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("testkit stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// ready reads the READY line and returns the address it names.
func (p *process) ready(t *testing.T) string {
	t.Helper()
	select {
	case s := <-p.lines:
		addr, ok := strings.CutPrefix(s, "POLYHOST_SIDECAR_READY ")
		if !ok || addr == "" || strings.Contains(addr, " ") {
			t.Fatalf("READY line %q; stderr: %s", s, p.stderr.String())
		}
		return addr
	case <-time.After(10 * time.Second):
		t.Fatalf("no READY line; stderr: %s", p.stderr.String())
	}
	return ""
}

// exitCode waits up to timeout for the process to exit and returns its status.
func (p *process) exitCode(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("still running after %v", timeout)
	}
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) {
		return exitErr.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

func shortTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "tk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func TestProcessReadyThenExitsWhenStdinCloses(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "testkit.sock")
	p := startTestkit(t, "POLYHOST_LISTEN=unix:"+sock, "POLYHOST_PARENT_WATCH=stdin")
	addr := p.ready(t)
	if addr != "unix:"+sock {
		t.Fatalf("READY names %q", addr)
	}
	if info, err := os.Stat(sock); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v %v", info, err)
	}

	c := sidecartest.Dial(t, addr)
	resp, err := c.Health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
	desc, err := c.Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: "1.1"})
	if err != nil || desc.GetName() != "testkit" || desc.GetSdk() != "polyhost-go/0.1.0" || len(desc.GetNodeTypes()) != 8 ||
		desc.GetProtocolVersion() != "1.1" {
		t.Fatalf("describe: %v %v", desc, err)
	}
	// A stuck call must not keep the sidecar alive once the host is gone.
	hung, err := c.Runtime.Execute(ctxT(t), request(t, "go.hang", "{}"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)

	began := time.Now()
	_ = p.stdin.Close()
	if code := p.exitCode(t, 3*time.Second); code != 0 {
		t.Errorf("exit status %d", code)
	}
	if took := time.Since(began); took > 1500*time.Millisecond {
		t.Errorf("took %v to exit after stdin closed", took)
	}
	if _, err := hung.Recv(); err == nil {
		t.Error("the hung call got an event")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket file remains: %v", err)
	}
}

func TestProcessSIGTERMLetsRunningCallsFinish(t *testing.T) {
	p := startTestkit(t, "POLYHOST_LISTEN=127.0.0.1:0")
	addr := p.ready(t)
	c := sidecartest.Dial(t, addr)

	// A hung call ends with its deadline and leaves the sidecar working.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Execute(ctx, "go.hang", map[string]any{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("hang: %v", err)
	}
	out, err := c.Run(ctxT(t), "go.pid", map[string]any{})
	var pid struct{ PID int }
	if err != nil || out.Decode(&pid) != nil || pid.PID != p.cmd.Process.Pid {
		t.Errorf("pid: %v %v", out, err)
	}
	// So does a hung Run call.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Run(ctx, "go.hang", map[string]any{}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("hang through Run: %v", err)
	}

	result := make(chan *sidecartest.Outcome, 1)
	go func() {
		out, err := c.Execute(ctxT(t), "go.sleep", map[string]int{"ms": 500})
		if err != nil {
			t.Error(err)
		}
		result <- out
	}()
	time.Sleep(150 * time.Millisecond)
	began := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if out := <-result; out == nil || string(out.Output) != `{"slept_ms":500}` {
		t.Errorf("the running call: %v", out)
	}
	if code := p.exitCode(t, 5*time.Second); code != 0 {
		t.Errorf("exit status %d", code)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("shutdown took %v", took)
	}
}

func TestProcessListenFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	p := startTestkit(t, "POLYHOST_LISTEN="+taken.Addr().String())
	if code := p.exitCode(t, 10*time.Second); code != 1 {
		t.Errorf("exit status %d", code)
	}
	msg := strings.TrimSuffix(p.stderr.String(), "\n")
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "cannot listen on "+taken.Addr().String()) {
		t.Errorf("stderr %q", msg)
	}
}

func TestProcessStartSwitches(t *testing.T) {
	p := startTestkit(t, "POLYHOST_LISTEN=127.0.0.1:0", "POLYHOST_TESTKIT_EXIT_AT_START=7")
	if code := p.exitCode(t, 10*time.Second); code != 7 {
		t.Errorf("exit status %d", code)
	}

	began := time.Now()
	p = startTestkit(t, "POLYHOST_LISTEN=127.0.0.1:0", "POLYHOST_TESTKIT_START_DELAY_MS=300",
		"POLYHOST_TESTKIT_PROTOCOL=2.0")
	addr := p.ready(t)
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Errorf("ready after %v despite a start delay of 300 ms", took)
	}
	desc, err := sidecartest.Dial(t, addr).Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: "1.1"})
	if err != nil || desc.GetProtocolVersion() != "2.0" {
		t.Errorf("describe: %v %v", desc, err)
	}
}

func TestProcessCrash(t *testing.T) {
	p := startTestkit(t, "POLYHOST_LISTEN=127.0.0.1:0")
	c := sidecartest.Dial(t, p.ready(t))
	out, err := c.Execute(ctxT(t), "go.crash", map[string]int{"after_ms": 100})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("the call ended with %v", err)
	}
	if out == nil || len(out.Events) != 1 || out.Events[0].GetLog() == nil {
		t.Errorf("events before the crash: %v", out)
	}
	if code := p.exitCode(t, 5*time.Second); code != 3 {
		t.Errorf("exit status %d", code)
	}
}

func TestProcessToken(t *testing.T) {
	p := startTestkit(t, "POLYHOST_LISTEN=127.0.0.1:0", "POLYHOST_SIDECAR_TOKEN=tk-secret-1")
	c := sidecartest.Dial(t, p.ready(t))
	describe := &runtimev1.DescribeRequest{ProtocolVersion: "1.1"}
	if _, err := c.Runtime.Describe(ctxT(t), describe); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without the token: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer tk-secret-1")
	if _, err := c.Runtime.Describe(ctx, describe); err != nil {
		t.Errorf("with the token: %v", err)
	}
	if _, err := c.Health.Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health: %v", err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.exitCode(t, 5*time.Second); code != 0 {
		t.Errorf("exit status %d", code)
	}
	if strings.Contains(p.stderr.String(), "tk-secret-1") {
		t.Error("the token appears in the logs")
	}
}

func request(t *testing.T, nodeType, params string) *runtimev1.ExecuteRequest {
	req, err := sidecartest.Request(nodeType, params)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader on different goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
