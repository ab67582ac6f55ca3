package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// groupTestSends are keyless sends of one to four messages (grouped) mixed
// with a keyed one and a ten-message one (each on its own statements).
func groupTestSends() []APISend {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var sends []APISend
	for i := range 37 {
		var msgs []Message
		for k := range 1 + i%4 {
			m := Message{Channel: "sms", Recipient: fmt.Sprintf("+35191%07d", i*10+k), Body: fmt.Sprintf("code %d", i), Ref: fmt.Sprintf("r%d", k),
				NextAttemptAt: at, Vars: map[string]string{"code": fmt.Sprint(i)}}
			if k == 2 {
				m.Channel, m.Recipient, m.Subject, m.Format, m.Sender, m.ExpiresAt = "email", fmt.Sprintf("a%d@example.com", i), "Hi", "html", "Acme <a@acme.example>", at.Add(time.Hour)
			}
			msgs = append(msgs, m)
		}
		sd := APISend{Req: APIRequest{Partner: fmt.Sprintf("p%d", i%3)}, Msgs: msgs, Templates: []TemplateRef{{Name: "otp", Version: 1 + i%2}}}
		switch i {
		case 5:
			sd.Req.Key, sd.Req.RequestHash = "k5", "h5"
		case 9:
			for k := range 10 {
				sd.Msgs = append(sd.Msgs, Message{Channel: "sms", Recipient: fmt.Sprintf("+35192%07d", k), Body: "bulk", NextAttemptAt: at})
			}
		}
		sends = append(sends, sd)
	}
	return sends
}

// storedSend is what a send stored, without its ids and times.
func storedSend(t *testing.T, st *Store, r APIResult) string {
	t.Helper()
	var b strings.Builder
	row := st.writer.QueryRow(`SELECT partner, source, COALESCE(file_id, -1), file_name, status, priority, total, templates,
		started_at IS NULL, finished_at IS NULL, last_message_id - first_message_id, first_message_id = ? FROM jobs WHERE id = ?`, r.IDs[0], r.Job.ID)
	var cols [12]any
	ptrs := make([]any, len(cols))
	for i := range cols {
		ptrs[i] = &cols[i]
	}
	if err := row.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(&b, cols)
	for _, id := range r.IDs {
		var m [14]any
		ptrs = ptrs[:0]
		for i := range m {
			ptrs = append(ptrs, &m[i])
		}
		if err := st.writer.QueryRow(`SELECT job_id = ?, channel, line, ref, recipient, subject, body, format, sender, vars, status, attempts, next_attempt_at, expires_at
			FROM messages WHERE id = ?`, r.Job.ID, id).Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, m)
	}
	rows, err := st.writer.Query(`SELECT channel, status, n FROM job_counts WHERE job_id = ? ORDER BY channel, status`, r.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ch, stt string
		var n int
		rows.Scan(&ch, &stt, &n)
		fmt.Fprintln(&b, ch, stt, n)
	}
	return b.String()
}

func statusTotals(t *testing.T, st *Store) string {
	t.Helper()
	rows, err := st.writer.Query(`SELECT kind, channel, status, n FROM status_totals ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var k, ch, s string
		var n int
		rows.Scan(&k, &ch, &s, &n)
		fmt.Fprintln(&b, k, ch, s, n)
	}
	return b.String()
}

// Sends written together with the group's statements are stored exactly as
// each written alone: the job (with its message range and templates), its
// messages, its tally and the status totals.
func TestGroupedSendsAreStoredAsSingleOnes(t *testing.T) {
	ctx := context.Background()
	sends := groupTestSends()
	together, alone := openAPITestStore(t), openAPITestStore(t)
	// Some rows first, so the ids do not start at 1.
	for _, st := range []*Store{together, alone} {
		if _, err := st.CreateAPIJobs(ctx, sends[:3]); err != nil {
			t.Fatal(err)
		}
	}
	res, err := together.CreateAPIJobs(ctx, sends)
	if err != nil {
		t.Fatal(err)
	}
	for i, sd := range sends {
		one, err := alone.CreateAPIJobs(ctx, []APISend{sd})
		if err != nil || one[0].Err != nil || res[i].Err != nil {
			t.Fatalf("send %d: %v %v %v", i, err, one[0].Err, res[i].Err)
		}
		if len(res[i].IDs) != len(sd.Msgs) || !slices.IsSorted(res[i].IDs) {
			t.Fatalf("send %d: ids %v for %d messages", i, res[i].IDs, len(sd.Msgs))
		}
		if got, want := storedSend(t, together, res[i]), storedSend(t, alone, one[0]); got != want {
			t.Errorf("send %d stored in a group:\n%s\nalone:\n%s", i, got, want)
		}
	}
	if got, want := statusTotals(t, together), statusTotals(t, alone); got != want {
		t.Errorf("status totals in a group:\n%s\nalone:\n%s", got, want)
	}
	// The next insert the usual way finds the ids the group took.
	var lastJob, lastMsg int64
	for _, r := range res {
		lastJob, lastMsg = max(lastJob, r.Job.ID), max(lastMsg, slices.Max(r.IDs))
	}
	j, ids, err := together.CreateJob(ctx, Job{Partner: "p0", Source: SourceAPI}, sends[0].Msgs)
	if err != nil || j.ID != lastJob+1 || ids[0] != lastMsg+1 {
		t.Fatalf("after the group: job %d, ids %v, %v", j.ID, ids, err)
	}
}

// A grouped send whose insert fails fails alone: the group is stored again
// send by send.
func TestGroupedSendFailingFailsAlone(t *testing.T) {
	st := openAPITestStore(t)
	refuseRecipient(t, st, "bad")
	sends := []APISend{apiSend("acme", "", "", "+351910000001"), apiSend("acme", "", "", "+351910000002", "bad"), apiSend("acme", "", "", "+351910000003")}
	res, err := st.CreateAPIJobs(context.Background(), sends)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[2].Err != nil || res[1].Err == nil {
		t.Fatalf("results = %+v; want only the second to fail", res)
	}
	if n := tableRows(t, st, "jobs"); n != 2 {
		t.Errorf("%d jobs; want 2", n)
	}
	if n := tableRows(t, st, "messages"); n != 2 {
		t.Errorf("%d messages; want 2", n)
	}
}
