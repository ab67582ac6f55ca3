package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func TestCLIUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"serve", "--bogus"}, {"check-config"}, {"serve", "extra"}} {
		_, stderr, err := runCLI(t, "", args...)
		var ue *usageError
		if !errors.As(err, &ue) || exitCode(err) != 2 {
			t.Errorf("%v: want a usage error (exit 2), got %v", args, err)
		}
		if stderr == "" {
			t.Errorf("%v: no usage printed", args)
		}
	}
}

func TestCLIHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"check-config", "--help"}, {"hash-password", "--help"}} {
		out, stderr, err := runCLI(t, "", args...)
		if err != nil || out+stderr == "" {
			t.Errorf("%v: err=%v, no help text", args, err)
		}
	}
	out, _, err := runCLI(t, "", "version")
	if err != nil || !strings.HasPrefix(out, "dropgate ") {
		t.Errorf("version: %q %v", out, err)
	}
}

func TestCheckConfig(t *testing.T) {
	out, stderr, err := runCLI(t, "", "check-config", "--config", filepath.Join("..", "..", "testdata", "dropgate.example.toml"))
	if err != nil || !strings.HasSuffix(out, "ok\n") {
		t.Fatalf("example config: err=%v out=%q stderr=%s", err, out, stderr)
	}

	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[admin]\nlisten = \"127.0.0.1:8080\"\n\n[[partner]]\nname = \"Bad Name\"\nchannels = [\"nope\"]\n"), 0o600)
	_, stderr, err = runCLI(t, "", "check-config", "--config", bad)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`line 5: partner[0].name`, `line 6: partner[0].channels[0]: unknown channel "nope"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestHashPasswordPrintsBcrypt(t *testing.T) {
	out, _, err := runCLI(t, "correct horse\n", "hash-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("correct horse")); err != nil {
		t.Fatalf("hash %q does not match: %v", out, err)
	}
	if _, _, err := runCLI(t, "short\n", "hash-password"); err == nil {
		t.Error("a 5-character password was accepted")
	}
}

// TestServeEmbeddedDefault runs "dropgate serve" with no config in an empty
// folder: secrets are generated, printed once and reused by a second start.
// embeddedDaemon is "dropgate serve" with no config, started by
// startEmbeddedDefault through run, as from the command line.
type embeddedDaemon struct {
	out, log *syncBuffer // stdout (the printed secrets) and stderr (the log)
	stop     func() error
}

// startEmbeddedDefault runs "dropgate serve --data data" on loopback ports
// until it logs that it started; stop (also run at cleanup) cancels it and
// returns what serve returned.
func startEmbeddedDefault(t *testing.T, data string) *embeddedDaemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &embeddedDaemon{out: &syncBuffer{}, log: &syncBuffer{}}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--admin-addr", "127.0.0.1:0", "--sftp-addr", "127.0.0.1:0", "--ftp-addr", "127.0.0.1:0"},
			func(string) string { return "" }, strings.NewReader(""), e.out, e.log)
	}()
	var once sync.Once
	var err error
	e.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { e.stop() })
	waitFor(t, 20*time.Second, "dropgate started", func() bool { return strings.Contains(e.log.String(), "dropgate started") })
	return e
}

func TestServeEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "dropgate-data")
	start := func() string {
		e := startEmbeddedDefault(t, data)
		if err := e.stop(); err != nil {
			t.Fatalf("serve: %v\n%s", err, e.log.String())
		}
		return e.out.String()
	}
	first := start()
	if !strings.Contains(first, "Generated admin token") || !strings.Contains(first, `Generated password for partner "demo"`) {
		t.Fatalf("first start did not print the secrets:\n%s", first)
	}
	for _, f := range []string{adminTokenFile, demoPasswordFile} {
		st, err := os.Stat(filepath.Join(data, "secrets", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("secret %s: %v mode %v", f, err, st.Mode())
		}
	}
	for _, sub := range []string{"inbox", "templates", "lists", "suppress", "reports"} {
		if _, err := os.Stat(filepath.Join(data, "partners", "demo", sub)); err != nil {
			t.Errorf("demo home: %v", err)
		}
	}
	if second := start(); strings.Contains(second, "Generated") {
		t.Errorf("second start generated secrets again:\n%s", second)
	}
}
