package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store/storetest"
)

// Test credentials of the daemons started by startDaemon.
const (
	testAdminToken = "test-admin-token-0123456789"
	testPassword   = "acme-password-1"
)

// testDaemon is a whole dropgate started in-process by startDaemon.
type testDaemon struct {
	Cfg   *config.Config
	Addrs addrs
	stop  func() error
}

// testConfig is the config startDaemon uses before mod: every listener on
// 127.0.0.1:0, a partner "acme" (password testPassword, channels email and
// sms of type outbox), short quiet period and poll interval, and the run's
// store (storetest.Configure: the schema OpenAt(t, cfg.DBPath()) opens).
func testConfig(t *testing.T, dataDir string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.SFTP.Listen = "127.0.0.1:0"
	cfg.FTP.Listen = "127.0.0.1:0"
	cfg.FTP.PassivePorts = ""
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Tokens = []string{testAdminToken}
	cfg.Ingest.QuietPeriod = config.Duration(300 * time.Millisecond)
	cfg.Sender.PollInterval = config.Duration(50 * time.Millisecond)
	cfg.Sender.ShutdownGrace = config.Duration(5 * time.Second)
	// A test machine may have less free than the default watermark (1 GiB
	// or 5 %); the full-disk tests set their own.
	cfg.Storage.MinFree = "1MiB"
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Partners = []config.Partner{{Name: "acme", PasswordHash: string(hash), Region: "PT", Timezone: "Europe/Lisbon",
		Channels: []string{"email", "sms"}}}
	storetest.Configure(t, cfg)
	return cfg
}

// startDaemon runs serve on cfg (see testConfig) until the test ends.
func startDaemon(t *testing.T, cfg *config.Config) *testDaemon {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, logger, func(a addrs) { ready <- a }) }()
	d := &testDaemon{Cfg: cfg}
	select {
	case d.Addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("daemon did not start within 20s")
	}
	stopped := false
	d.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("daemon did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return d
}

// Stop stops the daemon and returns what serve returned.
func (d *testDaemon) Stop() error { return d.stop() }

// Home is the path of a partner's home.
func (d *testDaemon) Home(partner string) string { return d.Cfg.PartnerHome(partner) }

// API calls the admin API with the admin token and decodes JSON into out.
func (d *testDaemon) API(t *testing.T, method, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+d.Addrs.Admin.String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
	return resp.StatusCode
}

// waitTemplates waits until n templates are stored, so that a CSV naming
// them is not rejected for an unknown template.
func (d *testDaemon) waitTemplates(t *testing.T, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%d templates to be stored", n), func() bool {
		var resp struct{ Templates []struct{ Name string } }
		d.API(t, "GET", "/api/v1/templates", &resp)
		return len(resp.Templates) == n
	})
}

// OutboxLines reads <data_dir>/outbox/<channel>.jsonl.
func (d *testDaemon) OutboxLines(t *testing.T, channel string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(d.Cfg.OutboxDir(), channel+".jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	// The sender may be appending while we read: a last line without its
	// line end is still being written, so it is left for the next read.
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("outbox line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// waitFor polls cond until it is true or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeFile writes a file in one go (as a writer that writes in place).
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameInto writes content to a temporary name in the same folder and
// renames it into place, as careful clients do.
func renameInto(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".part")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// testWriter sends the daemon's log to t.Log, so it shows only on failure.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
