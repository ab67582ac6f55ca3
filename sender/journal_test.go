package sender

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

func TestJournalKeepsOutcomesAcrossSegmentsAndSkipsATornTail(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_800_000_000_123)
	first := []store.Outcome{
		{ID: 1, JobID: 7, Attempt: 1, Kind: store.OutcomeSent, ProviderID: "SM-1", At: at},
		{ID: 2, JobID: 7, Attempt: 3, Kind: store.OutcomeRetry, Error: "HTTP 503: \"busy\" \\ é\n\x01", At: at, NextAttemptAt: at.Add(time.Minute)},
	}
	second := []store.Outcome{{ID: 3, JobID: 8, Attempt: 1, Kind: store.OutcomeFailed, Error: "HTTP 400: bad number", At: at}}
	if err := j.append(first); err != nil {
		t.Fatal(err)
	}
	seg1, err := j.rotate()
	if err != nil || seg1 == "" {
		t.Fatalf("rotate = %q, %v", seg1, err)
	}
	if err := j.append(second); err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	// A reopened journal continues after the segments on disk.
	j2, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := j2.segments()
	if err != nil || len(segs) != 2 || segs[0] != seg1 {
		t.Fatalf("segments = %v, %v", segs, err)
	}
	if j2.next != 3 {
		t.Fatalf("next segment = %d, want 3", j2.next)
	}
	got1, err := readSegment(segs[0])
	if err != nil || !slices.EqualFunc(got1, first, sameOutcome) {
		t.Fatalf("segment 1 = %+v, %v", got1, err)
	}
	// A machine crash can leave a partial line or zeroed blocks at the end.
	f, _ := os.OpenFile(segs[1], os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"id":4,"job":8,"att` + "\n\x00\x00\x00\x00")
	f.Close()
	got2, err := readSegment(segs[1])
	if err != nil || !slices.EqualFunc(got2, second, sameOutcome) {
		t.Fatalf("segment 2 with a torn tail = %+v, %v", got2, err)
	}
	// Damage followed by a good record is an error, not a silent skip.
	bad := filepath.Join(dir, "000000000009.log")
	os.WriteFile(bad, []byte("garbage\n"+`{"id":5,"job":8,"attempt":1,"kind":"sent","at":1}`+"\n"), 0o600)
	if _, err := readSegment(bad); err == nil {
		t.Fatal("a damaged segment read without error")
	}
}

func sameOutcome(a, b store.Outcome) bool {
	return a.ID == b.ID && a.JobID == b.JobID && a.Attempt == b.Attempt && a.Kind == b.Kind && a.ProviderID == b.ProviderID &&
		a.Error == b.Error && a.At.Equal(b.At) && a.NextAttemptAt.Equal(b.NextAttemptAt)
}

// What a killed sender had logged but not stored is stored at the next
// start, before anything is claimed: a logged delivery is not sent again,
// a logged retry keeps its attempt, and only the message that was in
// flight (nothing logged, lease expired) goes out again.
func TestRunStoresTheOutcomesALastRunLoggedBeforeItWasKilled(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	st := openStore(t, cfg)
	job := queueJob(t, st, "acme", store.SourceFile, store.PriorityBulk, "sms", 4)
	cs, err := st.ClaimMessages(ctx, job.ID, "sms", time.Now(), time.Millisecond, 10)
	if err != nil || len(cs) != 4 {
		t.Fatalf("claim = %d, %v", len(cs), err)
	}
	j, err := openJournal(cfg.DeliveryLogDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := j.append([]store.Outcome{
		{ID: cs[0].ID, JobID: job.ID, Attempt: 1, Kind: store.OutcomeSent, ProviderID: "prov-0", At: now},
		{ID: cs[1].ID, JobID: job.ID, Attempt: 1, Kind: store.OutcomeSent, ProviderID: "prov-1", At: now},
	}); err != nil {
		t.Fatal(err)
	}
	j.rotate()
	if err := j.append([]store.Outcome{
		{ID: cs[2].ID, JobID: job.ID, Attempt: 1, Kind: store.OutcomeRetry, Error: "HTTP 503: busy", At: now, NextAttemptAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	j.close()

	s := newSender(t, cfg, st, withClock(newFakeClock())) // a minute on: the leases expired
	stop := start(t, s)
	waitJob(t, st, job.ID, store.JobDone, 30*time.Second)
	stop()

	var resent []int64
	for _, r := range outboxLines(t, cfg, "sms") {
		resent = append(resent, r.ID)
	}
	slices.Sort(resent)
	if !slices.Equal(resent, []int64{cs[2].ID, cs[3].ID}) {
		t.Fatalf("sent again: %v; want only the retried %d and the in-flight %d", resent, cs[2].ID, cs[3].ID)
	}
	for i, want := range []string{"prov-0", "prov-1"} {
		if m, _ := st.Message(ctx, cs[i].ID); m.Status != store.MsgSent || m.ProviderID != want || m.Attempts != 1 {
			t.Fatalf("logged delivery %d = %+v", i, m)
		}
	}
	m, _ := st.Message(ctx, cs[2].ID)
	atts, _ := st.MessageAttempts(ctx, cs[2].ID)
	if m.Status != store.MsgSent || m.Attempts != 2 || len(atts) != 2 || atts[0].Error != "HTTP 503: busy" {
		t.Fatalf("logged retry = %+v, attempts %+v", m, atts)
	}
	if segs, _ := filepath.Glob(filepath.Join(cfg.DeliveryLogDir(), "*.log")); len(segs) != 0 {
		t.Fatalf("segments left after a clean stop: %v", segs)
	}
}

// A damaged segment does not stop the sender: it is set aside, and its
// messages go out again once their leases expire.
func TestRunSetsADamagedSegmentAside(t *testing.T) {
	cfg := testConfig(t)
	st := openStore(t, cfg)
	job := queueJob(t, st, "acme", store.SourceFile, store.PriorityBulk, "sms", 2)
	os.MkdirAll(cfg.DeliveryLogDir(), 0o750)
	seg := filepath.Join(cfg.DeliveryLogDir(), "000000000001.log")
	os.WriteFile(seg, []byte("garbage\n"+`{"id":1,"job":1,"attempt":1,"kind":"sent","at":1}`+"\n"), 0o600)
	stop := start(t, newSender(t, cfg, st))
	waitJob(t, st, job.ID, store.JobDone, 30*time.Second)
	stop()
	if _, err := os.Stat(seg + ".damaged"); err != nil {
		t.Fatalf("damaged segment not set aside: %v", err)
	}
	if n := len(outboxLines(t, cfg, "sms")); n != 2 {
		t.Fatalf("outbox has %d messages, want 2", n)
	}
}
