package killtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// workflowCrashRuns is how many runs the workflow crash test starts.
const workflowCrashRuns = 1000

// phoneSink is a provider that counts deliveries per recipient and per
// message (Idempotency-Key).
type phoneSink struct {
	mu    sync.Mutex
	to    map[string]int
	keys  map[string]int
	total int
}

func (k *phoneSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To string `json:"to"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	io.Copy(io.Discard, r.Body)
	key := r.Header.Get("Idempotency-Key")
	k.mu.Lock()
	k.to[body.To]++
	k.keys[key]++
	k.total++
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id": %q}`, "p-"+key)
}

func (k *phoneSink) counts() (total, messages, recipients int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.total, len(k.keys), len(k.to)
}

// TestSIGKILLWhileRunsWaitAndFireFiresEachRunOnce starts 1,000 runs that
// wait on a delay, SIGKILLs the daemon while they wait and again while
// they fire, restarts it, and checks that every run queued exactly one
// message: the provider sees one message per contact, and the workflow
// jobs hold 1,000 messages. (The provider may see a message twice after a
// kill mid-delivery, as any queued message: that is the sender's bound,
// not the workflow's.)
func TestSIGKILLWhileRunsWaitAndFireFiresEachRunOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the daemon; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	sink := &phoneSink{to: map[string]int{}, keys: map[string]int{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)

	dataDir := filepath.Join(dir, "data")
	adminAddr := crashFreeAddr(t)
	cfgPath := filepath.Join(dir, "dropgate.toml")
	cfg := crashSMSConfig(t, dataDir, adminAddr, srv.URL+"/v1/sms", `{"to": {{json .To}}, "text": {{json .Body}}}`,
		"concurrency = 2\nrate        = 400\n") + `
[[workflow]]
name    = "welcome"
partner = "acme"
on      = "signup"
steps   = [{ delay = "5s" }, { send = { template = "hello" } }]
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	d := startCrashChild(t, bin, cfgPath, adminAddr, filepath.Join(dir, "daemon-0.log"))
	crashAdminDo(t, adminAddr, "PUT", "/api/v1/templates/hello?partner=acme", "text/plain", "channel: sms\n---\nWelcome, {{.name}}!\n", 201)
	// Ten requests of 100 events, a fifth of a second apart: the runs'
	// due times spread over two seconds, so the second kill finds some
	// fired and some waiting. (The spread is not asserted on: a run that
	// fires before a kill is as good a test of once as one that waits.)
	for b := range 10 {
		time.Sleep(200 * time.Millisecond)
		var events []map[string]any
		for i := range 100 {
			n := b*100 + i
			events = append(events, map[string]any{"id": fmt.Sprintf("signup-%d", n), "event": "signup",
				"phone": fmt.Sprintf("+35191%07d", n), "data": map[string]any{"name": fmt.Sprintf("user %d", n)}})
		}
		body, _ := json.Marshal(map[string]any{"partner": "acme", "events": events})
		crashAdminDo(t, adminAddr, "POST", "/api/v1/events", "application/json", string(body), 202)
	}
	// Kill 1: every run is stored and waits on its delay.
	d.kill(t)
	if total, _, _ := sink.counts(); total != 0 {
		t.Logf("%d deliveries before the first kill", total)
	}

	// Kill 2: while the runs fire (and their messages are delivered).
	d = startCrashChild(t, bin, cfgPath, adminAddr, filepath.Join(dir, "daemon-1.log"))
	crashWait(t, 60*time.Second, "the first deliveries after restart", func() bool {
		total, _, _ := sink.counts()
		return total >= workflowCrashRuns/5
	})
	d.kill(t)
	total, msgs, _ := sink.counts()
	t.Logf("kill 2 after %d deliveries of %d messages", total, msgs)

	d = startCrashChild(t, bin, cfgPath, adminAddr, filepath.Join(dir, "daemon-final.log"))
	// A batch the killed node had claimed (PostgreSQL) is the restarted
	// node's at once (store.RegisterNode), not a minute later.
	crashWait(t, 60*time.Second, "a message to every contact", func() bool {
		_, _, recipients := sink.counts()
		return recipients >= workflowCrashRuns
	})
	jobs := waitJobsDone(t, adminAddr, 60*time.Second)
	var wf struct {
		Workflows []struct {
			Runs map[string]int `json:"runs"`
		} `json:"workflows"`
	}
	if !crashAdminGet(adminAddr, "/api/v1/workflows", &wf) || len(wf.Workflows) != 1 {
		t.Fatalf("GET /api/v1/workflows: %+v", wf)
	}
	d.stop(t)

	total, msgs, recipients := sink.counts()
	t.Logf("provider saw %d deliveries of %d messages to %d contacts", total, msgs, recipients)
	if recipients != workflowCrashRuns || msgs != workflowCrashRuns {
		t.Errorf("%d messages to %d contacts, want %d each: a run fired twice or not at all", msgs, recipients, workflowCrashRuns)
	}
	queued := 0
	for _, j := range jobs {
		queued += j.Total
	}
	if queued != workflowCrashRuns {
		t.Errorf("workflow jobs hold %d messages, want %d", queued, workflowCrashRuns)
	}
	if runs := wf.Workflows[0].Runs; runs["done"] != workflowCrashRuns {
		t.Errorf("runs by status %v, want %d done", runs, workflowCrashRuns)
	}
}

// crashAdminDo sends one admin request and fails unless it answers want.
func crashAdminDo(t *testing.T, addr, method, path, contentType, body string, want int) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+crashAdminToken)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
}
