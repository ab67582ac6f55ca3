package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/server/admin"
)

// apiClient talks to a running daemon's admin API for the admin commands
// (jobs, files, send, retry, cancel).
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags are the flags every admin command shares: where the daemon
// is and how to sign in.
type clientFlags struct {
	config, data, addr, token string
	json                      bool
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "the daemon's config file: its [admin] listen, tokens and data_dir")
	fs.StringVar(&f.data, "data", "", "the daemon's data directory (overrides data_dir; its secrets/admin-token is used)")
	fs.StringVar(&f.addr, "addr", "", "admin API address, host:port or an http(s):// URL (default: [admin] listen)")
	fs.StringVar(&f.token, "token", "", "admin token or partner API key (default: $DROPGATE_TOKEN, the config's first literal token, or <data_dir>/secrets/admin-token)")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON answer instead of a table")
}

// client resolves the address and token: flags, then the environment,
// then the config and the daemon's secrets.
func (f *clientFlags) client(getenv func(string) string) (*apiClient, error) {
	cfg := config.Default()
	if f.config != "" {
		var err error
		if cfg, err = config.Load(f.config, getenv); err != nil {
			return nil, err
		}
	}
	if f.data != "" {
		cfg.DataDir = f.data
	}
	c := &apiClient{token: f.token, http: &http.Client{Timeout: 60 * time.Second}}
	if c.token == "" {
		c.token = getenv("DROPGATE_TOKEN")
	}
	for _, t := range cfg.Admin.Tokens {
		if c.token == "" && !strings.HasPrefix(t, "sha256:") {
			c.token = t
		}
	}
	if c.token == "" {
		b, err := os.ReadFile(filepath.Join(cfg.SecretsDir(), adminTokenFile))
		if err != nil {
			return nil, &usageError{"no token: give --token, set DROPGATE_TOKEN, or point --config/--data at the daemon's files (" + err.Error() + ")"}
		}
		c.token = strings.TrimSpace(string(b))
	}
	addr := f.addr
	if addr == "" {
		addr = cfg.Admin.Listen
	}
	tlsOn := cfg.Admin.TLS != "" && cfg.Admin.TLS != "off"
	switch {
	case strings.HasPrefix(addr, "http://"), strings.HasPrefix(addr, "https://"):
		c.base = strings.TrimRight(addr, "/")
	default:
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, &usageError{fmt.Sprintf("--addr %q is not host:port or a URL", addr)}
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1" // the daemon listens everywhere: talk to it here
		}
		scheme := "http"
		if tlsOn {
			scheme = "https"
		}
		c.base = scheme + "://" + net.JoinHostPort(host, port)
	}
	if strings.HasPrefix(c.base, "https://") {
		// Trust the daemon's own certificate (a generated self-signed one
		// included) as well as the system's roots.
		pool, _ := x509.SystemCertPool()
		if pool == nil {
			pool = x509.NewCertPool()
		}
		if pem, err := os.ReadFile(admin.CertPath(cfg)); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return c, nil
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// do calls the API and decodes a JSON answer into out (when not nil); it
// returns the raw body too, for --json.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the daemon at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return raw, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return raw, &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("unexpected answer from %s: %w", path, err)
		}
	}
	return raw, nil
}

// splitArgs separates positional arguments from flags wherever they are
// (dropgate jobs 12 --follow), since package flag stops at the first
// positional one.
func splitArgs(fs *flag.FlagSet, args []string) (positional []string, help bool, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, true, nil
			}
			return nil, false, &usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, false, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
