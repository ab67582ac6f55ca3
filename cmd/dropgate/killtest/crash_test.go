package killtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store/storetest"
)

// crashMessages is how many messages the crash test queues.
const crashMessages = 20_000

// crashConcurrency is the http channel's concurrency in the crash test.
const crashConcurrency = 4

// crashDupBound is the most messages one SIGKILL may make the provider see
// twice: the channel's concurrency. A worker starts its next provider call
// only once its last outcome is committed, so at a kill each worker holds at
// most one message the provider may have and the database does not know.
const crashDupBound = crashConcurrency

const crashAdminToken = "crash-test-admin-token-0123456789"

// keySink is a provider that counts deliveries per Idempotency-Key.
type keySink struct {
	mu    sync.Mutex
	seen  map[string]int
	total int
}

func (k *keySink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	key := r.Header.Get("Idempotency-Key")
	k.mu.Lock()
	k.seen[key]++
	k.total++
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id": %q}`, "p-"+key)
}

func (k *keySink) counts() (total, distinct int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.total, len(k.seen)
}

// TestSIGKILLMidSendLosesNothingAndDuplicatesLittle builds the binary, queues
// 20,000 messages from a dropped CSV, SIGKILLs the daemon at random points
// while it sends through an http channel, restarts it each time, and checks
// that every message reached the provider, that each kill cost at most a
// bounded number of duplicates, and that the API agrees with the provider.
func TestSIGKILLMidSendLosesNothingAndDuplicatesLittle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the daemon; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildDaemon(t, dir)

	sink := &keySink{seen: map[string]int{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)

	dataDir := filepath.Join(dir, "data")
	adminAddr := crashFreeAddr(t)
	cfgPath := filepath.Join(dir, "dropgate.toml")
	writeCrashConfig(t, cfgPath, dataDir, adminAddr, srv.URL+"/v1/sms")
	dropCrashCSV(t, filepath.Join(dataDir, "partners", "acme", "inbox"))

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("seed %d", seed)

	const kills = 3
	for k := range kills {
		d := startCrashChild(t, bin, cfgPath, adminAddr, filepath.Join(dir, fmt.Sprintf("daemon-%d.log", k)))
		// Kill somewhere in the k-th quarter of the run, at a random point.
		target := crashMessages * (k + 1) / (kills + 1)
		target += rng.IntN(crashMessages / (kills + 1) / 2)
		// Generous: on PostgreSQL each delivery waits for its mark, and a
		// CI machine may be running other packages' tests beside it.
		crashWait(t, 120*time.Second, fmt.Sprintf("%d deliveries before kill %d", target, k+1), func() bool {
			total, _ := sink.counts()
			return total >= target
		})
		d.kill(t)
		total, distinct := sink.counts()
		t.Logf("kill %d after %d deliveries (%d distinct)", k+1, total, distinct)
	}

	d := startCrashChild(t, bin, cfgPath, adminAddr, filepath.Join(dir, "daemon-final.log"))
	jobs := waitJobsDone(t, adminAddr, 300*time.Second) // a bound on a hang, generous on a busy machine
	d.stop(t)

	total, distinct := sink.counts()
	t.Logf("provider saw %d deliveries of %d distinct messages (%d duplicates over %d kills)", total, distinct, total-distinct, kills)
	if distinct != crashMessages {
		t.Errorf("provider saw %d distinct messages, want %d: messages were lost", distinct, crashMessages)
	}
	if total-distinct > kills*crashDupBound {
		t.Errorf("%d duplicates over %d kills; want at most %d per kill", total-distinct, kills, crashDupBound)
	}
	sent, queued := 0, 0
	for _, j := range jobs {
		sent += j.Counts["sent"]
		queued += j.Total
	}
	if len(jobs) != 1 || queued != crashMessages || sent != distinct {
		t.Errorf("API: %d jobs, %d messages, %d sent; the provider saw %d distinct", len(jobs), queued, sent, distinct)
	}
}

// buildDaemon builds the dropgate binary (the command in the folder above) into dir.
func buildDaemon(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "dropgate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/dropgate/dropgate/cmd/dropgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// crashJob is a job as the crash tests read it from the API.
type crashJob struct {
	ID     int64          `json:"id"`
	Status string         `json:"status"`
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
}

// waitJobsDone waits until the API lists jobs and every one is done, and
// returns them.
func waitJobsDone(t testing.TB, adminAddr string, timeout time.Duration) []crashJob {
	t.Helper()
	return waitNJobsDone(t, adminAddr, 1, timeout)
}

// waitNJobsDone is waitJobsDone for at least n jobs: with several files
// dropped, the first one's job may be done before the next one's exists.
func waitNJobsDone(t testing.TB, adminAddr string, n int, timeout time.Duration) []crashJob {
	t.Helper()
	var jobs []crashJob
	crashWait(t, timeout, fmt.Sprintf("every job done (at least %d)", n), func() bool {
		var resp struct {
			Jobs []crashJob `json:"jobs"`
		}
		if !crashAdminGet(adminAddr, "/api/v1/jobs", &resp) || len(resp.Jobs) < n {
			return false
		}
		jobs = resp.Jobs
		for _, j := range jobs {
			if j.Status != "done" {
				return false
			}
		}
		return true
	})
	return jobs
}

// crashConfigHead is the part of the crash tests' configs they share: no
// file servers, the admin API on adminAddr, a short quiet period, and the
// run's store (storetest.TOML).
func crashConfigHead(t *testing.T, dataDir, adminAddr string) string {
	return configHead(dataDir, "", adminAddr) + storetest.TOML(t, dataDir)
}

// configHead is the config every daemon of these tests starts with:
// data_dir, SFTP on sftpAddr ("" for none), no FTP, the admin API on
// adminAddr with crashAdminToken, a short quiet period and a low free-space
// watermark; the caller adds the store, sender, partners and channels.
func configHead(dataDir, sftpAddr, adminAddr string) string {
	return fmt.Sprintf(`data_dir = %q

[sftp]
listen = %q

[ftp]
listen = ""

[admin]
listen = %q
tokens = [%q]

[ingest]
quiet_period = "200ms"

[storage]
min_free = "1MiB"
`, dataDir, sftpAddr, adminAddr, crashAdminToken)
}

// crashSMSConfig is crashConfigHead with partner acme on an http channel
// sms to url, whose request body is body; channelTail adds keys to the
// channel (its concurrency, a rate).
func crashSMSConfig(t *testing.T, dataDir, adminAddr, url, body, channelTail string) string {
	return crashConfigHead(t, dataDir, adminAddr) + fmt.Sprintf(`
[sender]
lease          = "2s"
poll_interval  = "20ms"
shutdown_grace = "2s"

[[partner]]
name     = "acme"
region   = "PT"
channels = ["sms"]

[[channel]]
name        = "sms"
type        = "http"
url         = %q
body        = '%s'
id_path     = "/id"
%s`, url, body, channelTail)
}

func writeCrashConfig(t *testing.T, path, dataDir, adminAddr, url string) {
	t.Helper()
	cfg := crashSMSConfig(t, dataDir, adminAddr, url, `{"to": {{json .To}}, "text": {{json .Body}}, "id": {{json .ID}}}`,
		fmt.Sprintf("concurrency = %d\n", crashConcurrency))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dropCrashCSV writes a phone;message file into the inbox under a temporary
// name and renames it into place, as a careful client would.
func dropCrashCSV(t *testing.T, inbox string) {
	t.Helper()
	if err := os.MkdirAll(inbox, 0o750); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("phone,message\n")
	for i := range crashMessages {
		fmt.Fprintf(&b, "+35191%07d,crash test message %d\n", i, i)
	}
	tmp := filepath.Join(inbox, ".crash.csv.part")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(inbox, "crash.csv")); err != nil {
		t.Fatal(err)
	}
}

// crashChild is a dropgate process started by startChild.
type crashChild struct {
	cmd  *exec.Cmd
	done chan error
}

func startCrashChild(t testing.TB, bin, cfgPath, adminAddr, logPath string) *crashChild {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crashChild{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-c.done
		}
	})
	crashWait(t, 20*time.Second, "the daemon to answer /healthz", func() bool {
		select {
		case err := <-c.done:
			c.done <- err
			log, _ := os.ReadFile(logPath)
			t.Fatalf("daemon exited at start: %v\n%s", err, log)
		default:
		}
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

// kill sends SIGKILL: no shutdown code runs.
func (c *crashChild) kill(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// stop asks for a graceful stop and waits for it.
func (c *crashChild) stop(t testing.TB) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Error("daemon did not stop within 20s of SIGTERM")
		c.cmd.Process.Kill()
		<-c.done
	}
}

func crashAdminGet(addr, path string, out any) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+crashAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(out) == nil
}

func crashFreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// crashWait polls cond every 5ms until it holds or timeout passes.
func crashWait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lastLines is the last n lines of s (a child's log, for a failure message).
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
