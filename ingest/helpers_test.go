package ingest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// testQuiet is the quiet period of the tests: short, yet long enough for
// the slow-writer test to space its writes below it on a busy machine.
const testQuiet = 400 * time.Millisecond

// testEnv is an Ingester over a real store in a temporary data dir.
type testEnv struct {
	t   *testing.T
	cfg *config.Config
	st  *store.Store
	in  *Ingester
}

// newTestEnv builds a config with two partners: acme (UTF-8, PT,
// Europe/Lisbon, reject_file, channels email and sms) and legacy
// (windows-1252, PT, skip_rows, sms only). mutate may change it.
func newTestEnv(t *testing.T, mutate func(*config.Config)) *testEnv {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Ingest.QuietPeriod = config.Duration(testQuiet)
	cfg.Ingest.BatchSize = 100
	cfg.Partners = []config.Partner{
		{Name: "acme", Region: "PT", Timezone: "Europe/Lisbon", Channels: []string{"email", "sms"}},
		{Name: "legacy", Region: "PT", Encoding: "windows-1252", OnBadRows: config.SkipRows, Channels: []string{"sms"}},
	}
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	st, err := storetest.OpenAt(t, cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	in, err := New(Options{Config: cfg, Store: st, Logger: logger,
		Now: func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return &testEnv{t: t, cfg: cfg, st: st, in: in}
}

// run starts the Ingester's Run until the test ends.
func (e *testEnv) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := e.in.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// home returns a path in a partner's home.
func (e *testEnv) home(partner, rel string) string {
	return filepath.Join(e.cfg.PartnerHome(partner), filepath.FromSlash(rel))
}

// write puts a file into a partner's home, creating folders.
func (e *testEnv) write(partner, rel string, data []byte) string {
	e.t.Helper()
	path := e.home(partner, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// ingest writes a file and ingests it synchronously, without the watcher.
func (e *testEnv) ingest(partner, rel string, data []byte) {
	e.t.Helper()
	e.write(partner, rel, data)
	e.in.process(context.Background(), workItem{partner: partner, rel: rel})
}

// template uploads and ingests templates/<name>.tmpl.
func (e *testEnv) template(partner, name, src string) {
	e.t.Helper()
	e.ingest(partner, "templates/"+name+".tmpl", []byte(src))
}

// readReport returns a report's content, or "" when it does not exist.
func (e *testEnv) readReport(partner, name string) string {
	b, err := os.ReadFile(e.home(partner, "reports/"+name))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// files lists the partner's files, oldest first.
func (e *testEnv) files(partner string) []store.File {
	e.t.Helper()
	fs, err := e.st.ListFiles(context.Background(), store.FileFilter{Partner: partner})
	if err != nil {
		e.t.Fatal(err)
	}
	for i, j := 0, len(fs)-1; i < j; i, j = i+1, j-1 {
		fs[i], fs[j] = fs[j], fs[i]
	}
	return fs
}

// lastFile returns the partner's newest file record.
func (e *testEnv) lastFile(partner string) store.File {
	e.t.Helper()
	fs := e.files(partner)
	if len(fs) == 0 {
		e.t.Fatal("no file recorded")
	}
	return fs[len(fs)-1]
}

// messages returns the messages of a job in order.
func (e *testEnv) messages(jobID int64) []store.Message {
	e.t.Helper()
	var out []store.Message
	if err := e.st.JobMessages(context.Background(), jobID, "", 0, 0, func(m store.Message) error {
		out = append(out, m)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// dumpMessages renders messages as JSON lines for golden files: the fields
// ingest decides, nothing that depends on the clock or ids.
func dumpMessages(msgs []store.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		v := struct {
			Line      int               `json:"line"`
			Channel   string            `json:"channel"`
			Recipient string            `json:"recipient"`
			Subject   string            `json:"subject,omitempty"`
			Body      string            `json:"body"`
			Format    string            `json:"format"`
			From      string            `json:"from,omitempty"`
			Ref       string            `json:"ref,omitempty"`
			Vars      map[string]string `json:"vars,omitempty"`
			SendAt    string            `json:"send_at,omitempty"`
		}{m.Line, m.Channel, m.Recipient, m.Subject, m.Body, m.Format, m.Sender, m.Ref, m.Vars, ""}
		if !m.NextAttemptAt.Equal(m.CreatedAt) {
			v.SendAt = m.NextAttemptAt.UTC().Format(time.RFC3339)
		}
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // goldens are read by people
		enc.Encode(v)
	}
	return b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
