package sidecar

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultListen is where a sidecar listens when nothing else says.
const DefaultListen = "127.0.0.1:50051"

// listenAddress picks the address: POLYHOST_LISTEN, else the -listen flag, else the
// WithListen option, else DefaultListen.
func (s *Sidecar) listenAddress(getenv func(string) string) string {
	for _, addr := range []string{getenv("POLYHOST_LISTEN"), s.flagListen, s.opts.listen} {
		if addr != "" {
			return addr
		}
	}
	return DefaultListen
}

// Listen opens a listener on addr: "unix:/absolute/path.sock" or "HOST:PORT". A stale socket
// file is removed first (a live one is an error), and the socket is made private (0600).
// HOST must be given: "0.0.0.0:PORT" or "[::]:PORT" listen on all interfaces, nothing else
// does. It returns the listener and the address in the same notation, with the real port
// when PORT is 0.
func Listen(addr string) (net.Listener, string, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		lis, err := listenUnix(path)
		if err != nil {
			return nil, "", err
		}
		return lis, "unix:" + path, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen address %q: want HOST:PORT or unix:/absolute/path.sock", addr)
	}
	if host == "" {
		return nil, "", fmt.Errorf("listen address %q names no host: use 127.0.0.1%s for this machine only, or 0.0.0.0%s for all interfaces",
			addr, addr, addr)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("cannot listen on %s: %w", addr, syscallError(err))
	}
	return lis, lis.Addr().String(), nil
}

func listenUnix(path string) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("listen address unix:%s: the socket path must be absolute", path)
	}
	if info, err := os.Lstat(path); err == nil {
		if info.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("cannot listen on unix:%s: the file exists and is not a socket", path)
		}
		if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = conn.Close()
			return nil, fmt.Errorf("cannot listen on unix:%s: another process is listening there", path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cannot remove the stale socket %s: %w", path, err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on unix:%s: %w", path, syscallError(err))
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("cannot make the socket %s private: %w", path, err)
	}
	return lis, nil
}

// syscallError drops the "listen tcp ADDR:" prefix of a net.OpError, which the caller's
// message already says.
func syscallError(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err
	}
	return err
}
