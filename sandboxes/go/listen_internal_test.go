package sidecar

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenAddressPrecedence(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	s := New("x")
	if got := s.listenAddress(getenv); got != DefaultListen {
		t.Errorf("default: %q", got)
	}
	s = New("x", WithListen("127.0.0.1:7000"))
	if got := s.listenAddress(getenv); got != "127.0.0.1:7000" {
		t.Errorf("option: %q", got)
	}
	s.flagListen = "127.0.0.1:8000"
	if got := s.listenAddress(getenv); got != "127.0.0.1:8000" {
		t.Errorf("flag over option: %q", got)
	}
	env["POLYHOST_LISTEN"] = "unix:/run/x.sock"
	if got := s.listenAddress(getenv); got != "unix:/run/x.sock" {
		t.Errorf("environment over flag: %q", got)
	}
}

func TestListenRefusesUnclearAddresses(t *testing.T) {
	for _, addr := range []string{":50051", "50051", "unix:relative.sock", "unix:", "localhost"} {
		if lis, _, err := Listen(addr); err == nil {
			_ = lis.Close()
			t.Errorf("%q accepted", addr)
		}
	}
}

func TestListenTakenPort(t *testing.T) {
	first, addr, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, _, err = Listen(addr)
	if err == nil || !strings.Contains(err.Error(), "cannot listen on "+addr) || strings.Contains(err.Error(), "\n") {
		t.Errorf("%v", err)
	}
}

func TestListenUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "sc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")

	// A stale socket (its process died) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = stale.Close()
	lis, shown, err := Listen("unix:" + path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	if shown != "unix:"+path {
		t.Errorf("address %q", shown)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v %v", info.Mode(), err)
	}

	// A live one is not.
	if _, _, err := Listen("unix:" + path); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("over a live socket: %v", err)
	}
	_ = lis.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the socket outlived its listener: %v", err)
	}

	// Nor is a file that is not a socket.
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Listen("unix:" + path); err == nil {
		t.Error("over a regular file")
	}
}

func TestNodeRegistrationMistakesPanic(t *testing.T) {
	h := func(context.Context, *Call) (any, error) { return nil, nil }
	cases := map[string]func(s *Sidecar){
		"empty type":    func(s *Sidecar) { s.Node(NodeType{}, h) },
		"nil handler":   func(s *Sidecar) { s.Node(NodeType{Type: "a"}, nil) },
		"bad schema":    func(s *Sidecar) { s.Node(NodeType{Type: "a", InputSchema: "{"}, h) },
		"duplicate":     func(s *Sidecar) { s.Node(NodeType{Type: "a"}, h); s.Node(NodeType{Type: "a"}, h) },
		"after serving": func(s *Sidecar) { s.startServing(); s.Node(NodeType{Type: "a"}, h) },
	}
	for name, register := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			register(New("x"))
		})
	}
}

func TestCheckProtocol(t *testing.T) {
	for v, ok := range map[string]bool{"1.0": true, "1.1": true, "1.12": true, "1": true, "2.0": false, "": false, "10.0": false, "v1.0": false} {
		if err := checkProtocol(v); (err == nil) != ok {
			t.Errorf("%q: %v", v, err)
		}
	}
}

func TestIsJSONObject(t *testing.T) {
	for text, ok := range map[string]bool{`{}`: true, ` {"a":[1]} `: true, `[]`: false, ``: false, `{`: false, `{} {}`: false, `null`: false} {
		if isJSONObject([]byte(text)) != ok {
			t.Errorf("%q", text)
		}
	}
}
