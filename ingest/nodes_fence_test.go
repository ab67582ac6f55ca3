package ingest

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// A node that stalls just before it applies a suppress/, lists/, events/
// or sends/ file, and meanwhile loses the file's claim to another node,
// applies nothing when it resumes: the apply's transaction checks the
// claim (store.WithClaimFence, JobWriter.HoldClaim). The other node then
// applies the file, once.
func TestStalledNodeAppliesNothingOnceItsClaimIsTakenOver(t *testing.T) {
	type kind struct {
		rel  string
		data string
		// setup prepares what the file needs; stored counts what applying
		// it stored.
		setup  func(t *testing.T, a, b *testEnv, accepted *atomic.Int64)
		stored func(t *testing.T, e *testEnv, accepted *atomic.Int64) int
	}
	kinds := map[string]kind{
		"suppress": {rel: "suppress/s.csv", data: "email\nana@example.com\n",
			stored: func(t *testing.T, e *testEnv, _ *atomic.Int64) int {
				n := 0
				if e.suppressed("acme", "sms", "ana@example.com") {
					n++
				}
				return n
			}},
		"lists": {rel: "lists/news/l.csv", data: "email,city\nana@example.com,Lisbon\nbia@example.com,Porto\n",
			stored: func(t *testing.T, e *testEnv, _ *atomic.Int64) int {
				n := 0
				for _, m := range []string{"ana@example.com", "bia@example.com"} {
					if _, err := e.st.FindContact(context.Background(), "acme", m, "", ""); err == nil {
						n++
					}
				}
				return n
			}},
		"events": {rel: "events/e.csv", data: "event,email\nsignup,ana@example.com\nsignup,bia@example.com\n",
			setup: func(t *testing.T, a, b *testEnv, accepted *atomic.Int64) {
				// The workflow engine's AcceptFile, with no workflow: the
				// events are stored and the file marked queued in one
				// transaction; accepted counts the committed ones.
				for _, e := range []*testEnv{a, b} {
					st := e.st
					e.in.SetEvents(func(ctx context.Context, fileID int64, rows int, evs []store.Event) ([]store.EventResult, error) {
						ws := make([]store.EventWrite, len(evs))
						for i := range evs {
							ws[i] = store.EventWrite{Event: evs[i]}
						}
						res, err := st.AcceptEventsFile(ctx, fileID, rows, ws, time.Now())
						if err == nil {
							accepted.Add(int64(len(res)))
						}
						return res, err
					})
				}
			},
			stored: func(t *testing.T, e *testEnv, accepted *atomic.Int64) int { return int(accepted.Load()) }},
		"sends": {rel: "sends/s.toml", data: "list = \"all\"\ntemplate = \"hi\"\n",
			setup: func(t *testing.T, a, b *testEnv, _ *atomic.Int64) {
				a.template("acme", "hi", "channel: sms\n---\nHello {{.city}}\n")
				list, err := a.st.EnsureList(context.Background(), "acme", "all")
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range []store.ContactInput{
					{Phone: "+351912345678", Attributes: map[string]any{"city": "Lisbon"}},
					{Phone: "+351912345679", Attributes: map[string]any{"city": "Porto"}},
				} {
					if _, _, err := a.st.PutContact(context.Background(), list, c); err != nil {
						t.Fatal(err)
					}
				}
			},
			stored: func(t *testing.T, e *testEnv, _ *atomic.Int64) int {
				n := 0
				for _, j := range e.jobs() {
					n += len(e.messages(j.ID))
				}
				return n
			}},
	}
	for name, k := range kinds {
		t.Run(name, func(t *testing.T) {
			onEngines(t, false, func(t *testing.T, open opener) {
				ctx := context.Background()
				cfg := nodesConfig(t)
				a := newNode(t, cfg, open(t, cfg.DBPath()), "A")
				b := newNode(t, cfg, open(t, cfg.DBPath()), "B")
				// A never renews its claim (it does not Run); B's clock is
				// past A's lease, so B takes the file over.
				a.in.claims.lease = time.Hour
				b.in.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
				var accepted atomic.Int64
				if k.setup != nil {
					k.setup(t, a, b, &accepted)
				}
				path := a.write("acme", k.rel, []byte(k.data))
				old := time.Now().Add(-time.Hour) // whole: no quiet period to wait for
				os.Chtimes(path, old, old)
				item := workItem{partner: "acme", rel: k.rel}

				entered, resume := make(chan struct{}), make(chan struct{})
				a.in.applying = func(string) {
					close(entered)
					<-resume
				}
				var wg sync.WaitGroup
				wg.Go(func() { a.in.process(ctx, item) })
				var once sync.Once
				letGo := func() { once.Do(func() { close(resume) }) }
				t.Cleanup(func() { letGo(); wg.Wait() })
				select {
				case <-entered:
				case <-time.After(60 * time.Second):
					t.Fatal("node A did not reach the apply")
				}
				// A stalls past its lease: B takes the file over and holds it.
				p := b.in.partners["acme"]
				releaseB, ok := b.in.claim(ctx, p, item, b.in.log)
				if !ok {
					t.Fatal("B could not take the file over")
				}
				letGo()
				wg.Wait()
				if n := k.stored(t, a, &accepted); n != 0 {
					t.Fatalf("the stalled node stored %d rows of the file after losing its claim, want none", n)
				}
				if _, err := os.Stat(path); err != nil {
					t.Fatalf("the stalled node took the file away: %v", err)
				}
				for _, f := range a.files("acme") {
					if f.Name == k.rel && f.Status != store.FileReceived {
						t.Fatalf("the stalled node recorded the file %+v", f)
					}
				}
				// B, holding the claim, applies the file once.
				releaseB()
				b.in.process(ctx, item)
				want := 2
				if name == "suppress" {
					want = 1
				}
				if n := k.stored(t, b, &accepted); n != want {
					t.Fatalf("stored %d after B's apply, want %d", n, want)
				}
				var recs []store.File
				for _, f := range b.files("acme") {
					if f.Name == k.rel {
						recs = append(recs, f)
					}
				}
				if len(recs) != 1 || recs[0].Status != store.FileQueued || recs[0].ArchivePath == "" {
					t.Fatalf("file records %+v, want one queued and archived", recs)
				}
			})
		})
	}
}
