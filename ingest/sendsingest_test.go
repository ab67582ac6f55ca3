package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// A list send's send_at schedules its messages as a CSV's send_at column
// does (in the partner's zone), an email template with conditions sees
// every attribute, contacts stay in contact order, and a contact whose
// stored address does not pass the row checks is rejected, not sent.
func TestListSendSchedulesAndRendersEveryAttribute(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	e.template("acme", "news", "channel: email\nsubject: News for {{.first_name}}\n---\n{{if eq .vip \"true\"}}VIP {{end}}{{.first_name}} of {{.city}}, {{.orders}} orders\n")
	list, err := e.st.EnsureList(ctx, "acme", "all")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.ContactInput{
		{Email: "ana@example.com", Attributes: map[string]any{"first_name": "Ana", "city": "Lisbon", "vip": true, "orders": int64(3)}},
		{Email: "rui@example.com", Attributes: map[string]any{"first_name": "Rui", "city": "Porto", "vip": false, "orders": int64(1)}},
		{Email: "not-an-address", Attributes: map[string]any{"first_name": "X", "city": "Faro", "vip": false, "orders": int64(1)}},
	} {
		if _, _, err := e.st.PutContact(ctx, list, c); err != nil {
			t.Fatal(err)
		}
	}
	res, problems, err := e.in.SendToList(ctx, "acme", ListSendRequest{List: "all", Template: "news", Segment: `orders >= 1`, SendAt: "2026-04-01 09:00"})
	if err != nil || len(problems) > 0 {
		t.Fatalf("send: %v %v", err, problems)
	}
	if res.Considered != 3 || res.Matched != 3 || res.Rejected != 1 || res.Queued != 2 || len(res.Errors) != 1 || res.Errors[0].Column != "email" {
		t.Fatalf("result = %+v", res)
	}
	msgs := e.messages(res.JobID)
	var got []string
	for _, m := range msgs {
		got = append(got, m.Recipient+"|"+m.Subject+"|"+strings.TrimSpace(m.Body)+"|"+m.NextAttemptAt.UTC().Format(time.RFC3339))
	}
	want := []string{
		"ana@example.com|News for Ana|VIP Ana of Lisbon, 3 orders|2026-04-01T08:00:00Z",
		"rui@example.com|News for Rui|Rui of Porto, 1 orders|2026-04-01T08:00:00Z",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	job, err := e.st.Job(ctx, res.JobID)
	if err != nil || job.Source != store.SourceList || job.Status != store.JobQueued || job.Total != 2 {
		t.Errorf("job = %+v, %v", job, err)
	}
	ls, err := e.st.ListSendOf(ctx, res.JobID, 10)
	if err != nil || ls.List != "all" || ls.Template != "news" || ls.Rejected != 1 || len(ls.Errors) != 1 {
		t.Errorf("list send = %+v, %v", ls, err)
	}

	// A bad send_at or an unknown template is a problem; nothing is queued.
	_, problems, err = e.in.SendToList(ctx, "acme", ListSendRequest{List: "all", Template: "nope", SendAt: "tomorrow"})
	if err != nil || len(problems) != 2 || problems[0].Field != "template" || problems[1].Field != "send_at" {
		t.Errorf("problems = %+v, %v", problems, err)
	}
	// Another partner's list is not found.
	if _, _, err := e.in.SendToList(ctx, "legacy", ListSendRequest{List: "all", Template: "news"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("legacy sending to acme's list: %v", err)
	}
}

// A list longer than a few of the workers' ranges is sent whole and in
// contact order, each member's message made from its own attributes
// (the workers reuse their decoders, matchers and message slices from
// range to range), and a dry run counts the same members.
func TestListSendAcrossRangesSendsEveryMember(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	e.template("acme", "welcome", benchTemplate)
	list, err := e.st.EnsureList(ctx, "acme", "customers")
	if err != nil {
		t.Fatal(err)
	}
	n := 3*memberRange + 100
	if storetest.OnPostgres() {
		loadTestContacts(t, e.st, "acme", list.Name, n)
	} else if err := insertBenchContacts(ctx, e.cfg.DBPath(), "acme", list.ID, n); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range n {
		if i%6 > 2 {
			want = append(want, fmt.Sprintf("+35191%07d|Ola %s, a sua encomenda ORD-%07d foi enviada.", i, benchNames[i%8], i))
		}
	}
	req := ListSendRequest{List: "customers", Template: "welcome", Segment: benchSegment, DryRun: true}
	dry, problems, err := e.in.SendToList(ctx, "acme", req)
	if err != nil || len(problems) > 0 || dry.Considered != n || dry.Matched != len(want) || dry.Queued != 0 {
		t.Fatalf("dry run: %+v %v %v", dry, problems, err)
	}
	req.DryRun = false
	res, problems, err := e.in.SendToList(ctx, "acme", req)
	if err != nil || len(problems) > 0 || res.Considered != n || res.Matched != len(want) || res.Queued != len(want) || res.Rejected != 0 {
		t.Fatalf("send: %+v %v %v", res, problems, err)
	}
	var got []string
	for _, m := range e.messages(res.JobID) {
		got = append(got, m.Recipient+"|"+strings.TrimSpace(m.Body))
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// A segment's now() is the send's start for every member, however long
// the send takes (here, a clock that moves an hour each time it is read).
func TestListSendJudgesEveryMemberAtOneInstant(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	e.template("acme", "hello", "channel: email\nsubject: Hi\n---\nHello {{.first_name}}\n")
	list, err := e.st.EnsureList(ctx, "acme", "all")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	const n = 30
	for i := range n {
		if _, _, err := e.st.PutContact(ctx, list, store.ContactInput{Email: fmt.Sprintf("c%d@example.com", i),
			Attributes: map[string]any{"first_name": "C", "due": t0.Add(10 * time.Hour)}}); err != nil {
			t.Fatal(err)
		}
	}
	var calls atomic.Int64
	e.in.now = func() time.Time { return t0.Add(time.Duration(calls.Add(1)-1) * time.Hour) }
	res, problems, err := e.in.SendToList(ctx, "acme", ListSendRequest{List: "all", Template: "hello", Segment: `due >= now()`, DryRun: true})
	if err != nil || len(problems) > 0 || res.Considered != n || res.Matched != n {
		t.Fatalf("dry run: %+v %v %v (the clock was read %d times)", res, problems, err, calls.Load())
	}
}

// A send reads the contact keys its segment, its template and its
// channel need, and no fewer: an SMS template that shows the email, and a
// dry run of a segment on phone and ref.
func TestListSendReadsTheKeysItUses(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	e.template("acme", "note", "channel: sms\n---\n{{.ref}} {{.email}} {{.first_name}}\n")
	list, err := e.st.EnsureList(ctx, "acme", "all")
	if err != nil {
		t.Fatal(err)
	}
	for i, email := range []string{"a@one.example", "b@two.example", "c@one.example"} {
		if _, _, err := e.st.PutContact(ctx, list, store.ContactInput{Email: email, Phone: fmt.Sprintf("+35191200000%d", i),
			Ref: fmt.Sprintf("r%d", i), Attributes: map[string]any{"first_name": "N"}}); err != nil {
			t.Fatal(err)
		}
	}
	res, problems, err := e.in.SendToList(ctx, "acme", ListSendRequest{List: "all", Template: "note", Segment: `ref != "r1"`})
	if err != nil || len(problems) > 0 || res.Matched != 2 || res.Queued != 2 {
		t.Fatalf("send: %+v %v %v", res, problems, err)
	}
	var got []string
	for _, m := range e.messages(res.JobID) {
		got = append(got, m.Recipient+"|"+m.Ref+"|"+strings.TrimSpace(m.Body))
	}
	want := "+351912000000|r0|r0 a@one.example N\n+351912000002|r2|r2 c@one.example N"
	if strings.Join(got, "\n") != want {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	dry, problems, err := e.in.SendToList(ctx, "acme", ListSendRequest{List: "all", Template: "note", Segment: `phone == "+351912000001" || ref == "r2"`, DryRun: true})
	if err != nil || len(problems) > 0 || dry.Considered != 3 || dry.Matched != 2 || dry.SkippedByError != 0 {
		t.Errorf("dry run: %+v %v %v", dry, problems, err)
	}
}

// loadTestContacts loads the contacts insertBenchContacts writes into
// SQLite directly (which it cannot do on PostgreSQL) through a list load,
// in the same order, so they get the same ids.
func loadTestContacts(t *testing.T, st *store.Store, partner, list string, n int) {
	t.Helper()
	fields := map[string]string{"city": "string", "first_name": "string", "last_order_at": "time", "order_id": "string", "orders": "integer", "vip": "boolean"}
	l, err := st.BeginListLoad(context.Background(), partner, list, store.ListLoadOptions{Fields: fields, Rows: n}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Abort()
	recent := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for i := range n {
		attrs, err := store.EncodeAttributes(map[string]any{"city": "Lisboa", "first_name": benchNames[i%8], "last_order_at": recent,
			"order_id": fmt.Sprintf("ORD-%07d", i), "orders": i % 6, "vip": i%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Add(store.ContactRow{Line: i + 2, Phone: fmt.Sprintf("+35191%07d", i), Ref: fmt.Sprintf("c%d", i), Attrs: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	if _, rowErrs, err := l.Finish(); err != nil || len(rowErrs) > 0 {
		t.Fatalf("list load: %v %v", rowErrs, err)
	}
	if _, err := l.Commit(0, n); err != nil {
		t.Fatal(err)
	}
}
