package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/store/storetest"
)

// The multi-node tests run several `dropgate serve` processes (the real
// binary) on one PostgreSQL schema and one data folder, as nodes behind a
// load balancer on shared storage would.

// requireNodes skips a multi-node test outside the PostgreSQL run: several
// nodes need one shared database, which SQLite is not. In CI the
// PostgreSQL run is required (storetest.Main fails without a database),
// so there these tests always run.
func requireNodes(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the daemon and runs several nodes; skipped with -short")
	}
	if !storetest.OnPostgres() {
		t.Skip("several nodes share one PostgreSQL database: runs in the PostgreSQL run (DROPGATE_TEST_POSTGRES)")
	}
}

// node is one dropgate process of a multi-node test.
type node struct {
	*crashChild
	name           string
	cfgPath, log   string
	admin, sftpAdr string
}

// nodeConfig is a node's config: its own listeners, the shared data
// folder and schema, a fixed admin token, partner acme (password
// testPassword) on channel sms, described by channel.
func nodeConfig(t *testing.T, dataDir, dsn, adminAddr, sftpAddr, channel string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
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

[store]
driver = "postgres"
dsn    = %q

[sender]
lease          = "2s"
poll_interval  = "20ms"
shutdown_grace = "2s"

[[partner]]
name          = "acme"
region        = "PT"
password_hash = %q
channels      = ["sms"]
`, dataDir, sftpAddr, adminAddr, crashAdminToken, dsn, hash) + channel
}

// httpChannel is an http channel "sms" posting to url.
func httpChannel(url string, concurrency int, rate float64, burst int) string {
	s := fmt.Sprintf(`
[[channel]]
name        = "sms"
type        = "http"
url         = %q
body        = '{"to": {{json .To}}, "text": {{json .Body}}, "id": {{json .ID}}}'
id_path     = "/id"
concurrency = %d
`, url, concurrency)
	if rate > 0 {
		s += fmt.Sprintf("rate        = %g\nburst       = %d\n", rate, burst)
	}
	return s
}

// startNodes starts n nodes on dataDir's schema, one after another (the
// first creates the schema, keys and secrets the others then find);
// channel(i) is node i's channel section.
func startNodes(t *testing.T, bin, dir, dataDir string, n int, channel func(i int) string) []*node {
	t.Helper()
	dsn := storetest.DSN(t, dataDir)
	var nodes []*node
	for i := range n {
		nd := &node{name: fmt.Sprintf("node%d", i), admin: crashFreeAddr(t), sftpAdr: crashFreeAddr(t)}
		nd.cfgPath = filepath.Join(dir, nd.name+".toml")
		if err := os.WriteFile(nd.cfgPath, []byte(nodeConfig(t, dataDir, dsn, nd.admin, nd.sftpAdr, channel(i))), 0o600); err != nil {
			t.Fatal(err)
		}
		nd.start(t, bin, dir)
		nodes = append(nodes, nd)
	}
	return nodes
}

// start (re)starts the node's process, logging to a new file in dir.
func (nd *node) start(t *testing.T, bin, dir string) {
	t.Helper()
	for k := 0; ; k++ {
		nd.log = filepath.Join(dir, fmt.Sprintf("%s-%d.log", nd.name, k))
		if _, err := os.Stat(nd.log); os.IsNotExist(err) {
			break
		}
	}
	nd.crashChild = startCrashChild(t, bin, nd.cfgPath, nd.admin, nd.log)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(nd.log)
			t.Logf("%s log (%s):\n%s", nd.name, nd.log, lastLines(string(b), 40))
		}
	})
}

// sftpUpload uploads content to path through the node's SFTP server with
// the pkg/sftp client, as partner acme.
func (nd *node) sftpUpload(t *testing.T, path, content string) {
	t.Helper()
	conn, err := ssh.Dial("tcp", nd.sftpAdr, &ssh.ClientConfig{User: "acme", Auth: []ssh.AuthMethod{ssh.Password(testPassword)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("%s: SFTP login: %v", nd.name, err)
	}
	defer conn.Close()
	sc, err := pkgsftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sftpPut(t, sc, path, content)
}

// numberedCSV is a phone,message file of rows [from, from+n).
func numberedCSV(from, n int) string {
	var b strings.Builder
	b.WriteString("phone,message\n")
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "+35191%07d,node test message %d\n", i, i)
	}
	return b.String()
}

// TestThreeNodesShareTheHomesAndTheQueueThroughAKill: three nodes on one
// schema and one data folder; 20,000 messages in files dropped through
// different nodes' SFTP servers; one node is SIGKILLed while they are
// being sent. Every message reaches the provider, the duplicates are at
// most the killed node's concurrency (what its workers had in flight),
// and every file is ingested once, into one job.
func TestThreeNodesShareTheHomesAndTheQueueThroughAKill(t *testing.T) {
	requireNodes(t)
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	sink := &keySink{seen: map[string]int{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	dataDir := filepath.Join(dir, "data")
	nodes := startNodes(t, bin, dir, dataDir, 3, func(int) string { return httpChannel(srv.URL+"/v1/sms", crashConcurrency, 0, 0) })

	const files = 4
	per := crashMessages / files
	for i := range files {
		nodes[i%len(nodes)].sftpUpload(t, fmt.Sprintf("/inbox/part-%d.csv", i), numberedCSV(i*per, per))
	}

	crashWait(t, 120*time.Second, "a third of the messages to be delivered", func() bool {
		total, _ := sink.counts()
		return total >= crashMessages/3
	})
	nodes[1].kill(t)
	total, distinct := sink.counts()
	t.Logf("killed node1 after %d deliveries (%d distinct)", total, distinct)

	jobs := waitJobsDone(t, nodes[0].admin, 180*time.Second)
	total, distinct = sink.counts()
	t.Logf("provider saw %d deliveries of %d distinct messages (%d duplicates)", total, distinct, total-distinct)
	if distinct != crashMessages {
		t.Errorf("provider saw %d distinct messages, want %d: messages were lost", distinct, crashMessages)
	}
	if total-distinct > crashDupBound {
		t.Errorf("%d duplicates after one kill; want at most the node's concurrency, %d", total-distinct, crashDupBound)
	}
	sent, queued := 0, 0
	for _, j := range jobs {
		sent += j.Counts["sent"]
		queued += j.Total
	}
	if len(jobs) != files || queued != crashMessages || sent != crashMessages {
		t.Errorf("API: %d jobs of %d messages, %d sent; want %d jobs of %d, all sent", len(jobs), queued, sent, files, crashMessages)
	}
	var resp struct {
		Files []struct {
			Name, Status string
			JobID        int64 `json:"job_id"`
		} `json:"files"`
	}
	if !crashAdminGet(nodes[2].admin, "/api/v1/files", &resp) {
		t.Fatal("cannot list the files")
	}
	seen := map[string]int{}
	for _, f := range resp.Files {
		seen[f.Name]++
		if f.Status != "queued" || f.JobID == 0 {
			t.Errorf("file %s: status %s, job %d; want queued into a job", f.Name, f.Status, f.JobID)
		}
	}
	for i := range files {
		if name := fmt.Sprintf("inbox/part-%d.csv", i); seen[name] != 1 {
			t.Errorf("%s recorded %d times, want once", name, seen[name])
		}
	}
	if len(resp.Files) != files {
		t.Errorf("%d files recorded, want %d: %+v", len(resp.Files), files, resp.Files)
	}
}

// arrivalSink is a provider that records when each request arrives and
// through which node (the last part of the path: each node's config
// names its own URL for the same channel).
type arrivalSink struct {
	mu     sync.Mutex
	at     []time.Time
	byNode map[string]int
}

func (a *arrivalSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	now := time.Now()
	a.mu.Lock()
	a.at = append(a.at, now)
	a.byNode[path.Base(r.URL.Path)]++
	n := len(a.at)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id": "p-%d"}`, n)
}

func (a *arrivalSink) snapshot() ([]time.Time, map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.at), maps.Clone(a.byNode)
}

// TestChannelRateHoldsAcrossThreeNodes: three nodes send one channel whose
// rate is 100/s; the rate is the channel's total, so the provider sees at
// most 100 a second (plus the burst) while all three send.
//
// The bounds only fail when messages come too fast, which a busy machine
// does not cause: a slow machine spreads them further. What a busy
// machine can do is hold requests and hand them to the sink together, so
// each bound allows the requests in flight (every node's concurrency)
// besides the burst.
func TestChannelRateHoldsAcrossThreeNodes(t *testing.T) {
	requireNodes(t)
	const (
		rate        = 100
		burst       = 10
		concurrency = 2
		nodesN      = 3
		messages    = 700
	)
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	sink := &arrivalSink{byNode: map[string]int{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	dataDir := filepath.Join(dir, "data")
	nodes := startNodes(t, bin, dir, dataDir, nodesN, func(i int) string {
		return httpChannel(fmt.Sprintf("%s/v1/sms/node%d", srv.URL, i), concurrency, rate, burst)
	})
	nodes[0].sftpUpload(t, "/inbox/rated.csv", numberedCSV(0, messages))
	waitJobsDone(t, nodes[1].admin, 120*time.Second)

	at, byNode := sink.snapshot()
	if len(at) < messages {
		t.Fatalf("provider saw %d messages, want %d", len(at), messages)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	slack := burst + nodesN*concurrency
	took := at[len(at)-1].Sub(at[0])
	maxWindow := 0
	for i, j := 0, 0; i < len(at); i++ {
		for j < len(at) && at[j].Sub(at[i]) < time.Second {
			j++
		}
		maxWindow = max(maxWindow, j-i)
	}
	t.Logf("%d messages in %v (%.0f/s); at most %d in one second; by node %v",
		len(at), took.Round(time.Millisecond), float64(len(at)-1)/took.Seconds(), maxWindow, byNode)
	if minTook := time.Duration(float64(len(at)-slack) / rate * float64(time.Second)); took < minTook {
		t.Errorf("%d messages took %v; at %d/s in total (burst %d) they take at least %v", len(at), took, rate, burst, minTook)
	}
	if maxWindow > rate+slack {
		t.Errorf("the provider saw %d messages within one second; the channel's rate is %d/s in total (burst %d, %d in flight)",
			maxWindow, rate, burst, nodesN*concurrency)
	}
	if len(byNode) < 2 {
		t.Errorf("only %v sent: the test needs several nodes sending at once", byNode)
	}
}
