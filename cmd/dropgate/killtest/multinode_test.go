package killtest

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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

	"github.com/dropgate/dropgate/internal/pgtest"
	"github.com/dropgate/dropgate/store/storetest"
)

// The multi-node tests run several `dropgate serve` processes (the real
// binary) on one PostgreSQL schema and one shared folder, laid out as the
// README's two-node example: each node has a data_dir of its own whose
// partners/ and archive/ are links into the shared folder.

// requirePostgresRun skips a test of the binary on PostgreSQL outside the
// PostgreSQL run (why says what it needs PostgreSQL for). In CI the
// PostgreSQL run is required (storetest.Main fails without a database),
// so there these tests always run.
func requirePostgresRun(t *testing.T, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the daemon; skipped with -short")
	}
	if !storetest.OnPostgres() {
		t.Skip(why + ": runs in the PostgreSQL run (" + pgtest.EnvVar + ")")
	}
}

// testPassword is partner acme's password in every node's config.
const testPassword = "acme-password-1"

// daemonNode is one dropgate process of a multi-node test.
type daemonNode struct {
	*crashChild
	name           string
	cfgPath, log   string
	admin, sftpAdr string
}

// nodeConfig is a node's config: its own listeners and data folder, the
// shared schema (dsn; "" keeps SQLite), a fixed admin token, partner acme (password
// testPassword) on channel sms, described by channel. The lease is what a
// live node's claim of up to 256 messages may take on a busy machine
// (the crash test's 2 s is enough for one node; three nodes ingesting
// and sending on two cores took longer, and other nodes re-sent the
// batches whose leases ran out), and how long a killed node's claims
// wait for another node.
func nodeConfig(t testing.TB, dataDir, dsn, adminAddr, sftpAddr, channel string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	store := "" // SQLite in data_dir
	if dsn != "" {
		// Each node its own name (the data_dir's: node0, node1...).
		store = fmt.Sprintf("\n[store]\ndriver = \"postgres\"\ndsn    = %q\nnode   = %q\n", dsn, filepath.Base(dataDir))
	}
	return configHead(dataDir, sftpAddr, adminAddr) + store + fmt.Sprintf(`
[sender]
lease          = "15s"
poll_interval  = "20ms"
shutdown_grace = "2s"

[[partner]]
name          = "acme"
region        = "PT"
password_hash = %q
channels      = ["sms"]
`, hash) + channel
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

// startNodes starts n nodes on the schema of shared, one after another
// (the first creates the schema; dsn "": one node on SQLite); channel(i)
// is node i's channel section.
func startNodes(t testing.TB, bin, dir, shared, dsn string, n int, channel func(i int) string) []*daemonNode {
	t.Helper()
	var nodes []*daemonNode
	for i := range n {
		nd := &daemonNode{name: fmt.Sprintf("node%d", i), admin: crashFreeAddr(t), sftpAdr: crashFreeAddr(t)}
		dataDir := filepath.Join(dir, nd.name)
		for _, sub := range []string{"partners", "archive"} {
			if err := os.MkdirAll(filepath.Join(shared, sub), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dataDir, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(shared, sub), filepath.Join(dataDir, sub)); err != nil {
				t.Fatal(err)
			}
		}
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
func (nd *daemonNode) start(t testing.TB, bin, dir string) {
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
func (nd *daemonNode) sftpUpload(t testing.TB, path, content string) {
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
	f, err := sc.Create(path)
	if err != nil {
		t.Fatalf("%s: sftp create %s: %v", nd.name, path, err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatalf("%s: sftp write %s: %v", nd.name, path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("%s: sftp close %s: %v", nd.name, path, err)
	}
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
// schema and one shared folder of homes; 20,000 messages in files dropped through
// different nodes' SFTP servers; one node is SIGKILLed while they are
// being sent. Every message reaches the provider, the duplicates are at
// most the killed node's concurrency (what its workers had in flight),
// and every file is ingested once, into one job.
func TestThreeNodesShareTheHomesAndTheQueueThroughAKill(t *testing.T) {
	requirePostgresRun(t, "several nodes share one PostgreSQL database")
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	sink := &keySink{seen: map[string]int{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	shared := filepath.Join(dir, "shared")
	nodes := startNodes(t, bin, dir, shared, storetest.DSN(t, shared), 3, func(int) string { return httpChannel(srv.URL+"/v1/sms", crashConcurrency, 0, 0) })

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

	jobs := waitNJobsDone(t, nodes[0].admin, files, 180*time.Second)
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
	requirePostgresRun(t, "several nodes share one PostgreSQL database")
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
	shared := filepath.Join(dir, "shared")
	nodes := startNodes(t, bin, dir, shared, storetest.DSN(t, shared), nodesN, func(i int) string {
		return httpChannel(fmt.Sprintf("%s/v1/sms/node%d", srv.URL, i), concurrency, rate, burst)
	})
	nodes[0].sftpUpload(t, "/inbox/rated.csv", numberedCSV(0, messages))
	waitJobsDone(t, nodes[1].admin, 300*time.Second) // a bound on a hang, generous on a busy machine

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

// TestMigrateSQLiteToPostgresThroughTheBinary: a node runs on SQLite and
// sends two files' messages; stopped, `dropgate migrate --to postgres`
// copies its database; started again on PostgreSQL, the node shows the
// same jobs and files, sends nothing again, and takes a new file into a
// new job after the copied ones.
func TestMigrateSQLiteToPostgresThroughTheBinary(t *testing.T) {
	requirePostgresRun(t, "moves a SQLite node to PostgreSQL")
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	sink := &keySink{seen: map[string]int{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	dataDir := filepath.Join(dir, "data")
	nd := &daemonNode{name: "node", admin: crashFreeAddr(t), sftpAdr: crashFreeAddr(t), cfgPath: filepath.Join(dir, "sqlite.toml")}
	sqliteCfg := nodeConfig(t, dataDir, "", nd.admin, nd.sftpAdr, httpChannel(srv.URL+"/v1/sms", crashConcurrency, 0, 0))
	if err := os.WriteFile(nd.cfgPath, []byte(sqliteCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	nd.start(t, bin, dir)
	nd.sftpUpload(t, "/inbox/first.csv", numberedCSV(0, 300))
	nd.sftpUpload(t, "/inbox/second.csv", numberedCSV(300, 200))
	before := waitNJobsDone(t, nd.admin, 2, 60*time.Second)
	var filesBefore struct{ Files []map[string]any }
	if !crashAdminGet(nd.admin, "/api/v1/files", &filesBefore) {
		t.Fatal("cannot list the files")
	}
	nd.stop(t)
	if _, err := os.Stat(filepath.Join(dataDir, "dropgate.db")); err != nil {
		t.Fatalf("the SQLite node left no database: %v", err)
	}

	dsn := storetest.DSN(t, dataDir)
	out, err := exec.Command(bin, "migrate", "--to", "postgres", "--dsn", dsn, "--config", nd.cfgPath).CombinedOutput()
	t.Logf("dropgate migrate:\n%s", out)
	if err != nil || !strings.Contains(string(out), "every count matches") {
		t.Fatalf("dropgate migrate: %v", err)
	}
	total, distinct := sink.counts()
	if distinct != 500 || total != 500 {
		t.Fatalf("before the move the provider saw %d deliveries of %d messages, want 500 of 500", total, distinct)
	}

	nd.cfgPath = filepath.Join(dir, "postgres.toml")
	if err := os.WriteFile(nd.cfgPath, []byte(nodeConfig(t, dataDir, dsn, nd.admin, nd.sftpAdr, httpChannel(srv.URL+"/v1/sms", crashConcurrency, 0, 0))), 0o600); err != nil {
		t.Fatal(err)
	}
	nd.start(t, bin, dir)
	after := waitNJobsDone(t, nd.admin, 2, 30*time.Second)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("jobs on PostgreSQL = %+v, want those of SQLite %+v", after, before)
	}
	var filesAfter struct{ Files []map[string]any }
	if !crashAdminGet(nd.admin, "/api/v1/files", &filesAfter) {
		t.Fatal("cannot list the files")
	}
	if fmt.Sprint(filesAfter) != fmt.Sprint(filesBefore) {
		t.Errorf("files on PostgreSQL = %v, want those of SQLite %v", filesAfter, filesBefore)
	}
	nd.sftpUpload(t, "/inbox/third.csv", numberedCSV(500, 100))
	crashWait(t, 60*time.Second, "the third file's job", func() bool {
		var resp struct{ Jobs []crashJob }
		return crashAdminGet(nd.admin, "/api/v1/jobs", &resp) && len(resp.Jobs) == 3
	})
	jobs := waitNJobsDone(t, nd.admin, 3, 60*time.Second)
	nd.stop(t)
	var maxBefore int64
	for _, j := range before {
		maxBefore = max(maxBefore, j.ID)
	}
	if jobs[0].ID <= maxBefore || jobs[0].Total != 100 || jobs[0].Counts["sent"] != 100 {
		t.Errorf("the new file's job = %+v, want a new id after %d with 100 sent", jobs[0], maxBefore)
	}
	total, distinct = sink.counts()
	if distinct != 600 || total != 600 {
		t.Errorf("the provider saw %d deliveries of %d messages, want 600 of 600: each once", total, distinct)
	}
}
