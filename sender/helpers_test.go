package sender

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// testConfig is a validated configuration over a temporary data dir with
// the given channels and a fast poll interval.
func testConfig(t *testing.T, channels ...config.Channel) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Sender.PollInterval = config.Duration(10 * time.Millisecond)
	cfg.Sender.Lease = config.Duration(30 * time.Second)
	cfg.Sender.ShutdownGrace = config.Duration(5 * time.Second)
	if len(channels) > 0 {
		cfg.Channels = channels
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// openStore opens a real store in the config's data dir.
func openStore(t *testing.T, cfg *config.Config) *store.Store {
	t.Helper()
	st, err := storetest.OpenAt(t, cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// queueJob creates a job of n messages to channel for partner.
func queueJob(t *testing.T, st *store.Store, partner, source string, priority int, channel string, n int) store.Job {
	t.Helper()
	msgs := make([]store.Message, n)
	for i := range msgs {
		msgs[i] = store.Message{Channel: channel, Recipient: fmt.Sprintf("+1555%07d", i), Body: fmt.Sprintf("hello %d", i),
			Ref: fmt.Sprintf("r%d", i), Line: i + 2}
	}
	return queueMessages(t, st, partner, source, priority, msgs)
}

func queueMessages(t *testing.T, st *store.Store, partner, source string, priority int, msgs []store.Message) store.Job {
	t.Helper()
	j, _, err := st.CreateJob(context.Background(), store.Job{Partner: partner, Source: source, Priority: priority}, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// newSender builds a sender with fast retries.
func newSender(t *testing.T, cfg *config.Config, st *store.Store, opts ...func(*Options)) *Sender {
	t.Helper()
	o := Options{Config: cfg, Store: st, RetryBase: 10 * time.Millisecond, RetryCap: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range opts {
		f(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs s until the returned stop is called (or the test ends); stop
// waits for Run to return and fails the test on an error.
func start(t *testing.T, s *Sender) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitJob waits until the job reaches status and returns it.
func waitJob(t *testing.T, st *store.Store, id int64, status string, timeout time.Duration) store.Job {
	t.Helper()
	var j store.Job
	waitFor(t, timeout, fmt.Sprintf("job %d to be %s", id, status), func() bool {
		var err error
		j, err = st.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return j.Status == status
	})
	return j
}

// outboxLines reads <data_dir>/outbox/<channel>.jsonl.
func outboxLines(t *testing.T, cfg *config.Config, channel string) []outboxRecord {
	t.Helper()
	f, err := os.Open(filepath.Join(cfg.OutboxDir(), channel+".jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []outboxRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r outboxRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("outbox line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// closedPort returns a local TCP port with nothing listening on it.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
