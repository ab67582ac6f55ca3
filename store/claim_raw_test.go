package store

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A claim reads its candidates through SQLite's C API (claim_raw.go): it
// must read every column as database/sql did, across batches larger than
// one string array, with NULL-free empties, vars, formats and ages.
func TestRawCandidatesAgreeWithThePoolsRead(t *testing.T) {
	skipOnPostgres(t, "the raw read is SQLite's; PostgreSQL claims through claim_pg.go")
	ctx := context.Background()
	s := openTest(t)
	var msgs []Message
	for i := range 300 {
		m := Message{Channel: "sms", Line: i + 2, Recipient: fmt.Sprintf("+1555%07d", i), Body: fmt.Sprintf("hello %d", i)}
		switch i % 5 {
		case 1:
			m.Ref, m.Subject, m.Sender = "ref-"+fmt.Sprint(i), "Olá \"Zé\"", "acme"
		case 2:
			m.Vars = map[string]string{"name": "Zé", "n": fmt.Sprint(i)}
		case 3:
			m.Format, m.Body = "html", "<p>"+strings.Repeat("é", 9000)+"</p>" // past one 16 KiB array
		case 4:
			m.Format = "markdown"
		}
		msgs = append(msgs, m)
	}
	j, ids, err := s.CreateJob(ctx, Job{Partner: "acme", Source: SourceFile, Priority: PriorityBulk}, msgs)
	if err != nil {
		t.Fatal(err)
	}
	// Ages and expiries as a retry and a job's expiry leave them.
	if _, err := s.writer.ExecContext(ctx, `UPDATE messages SET age_from = ?, expires_at = ?, attempts = 2 WHERE id % 7 = 0`,
		ms(time.Now().Add(-time.Hour)), ms(time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	other, _, err := s.CreateJob(ctx, Job{Partner: "acme", Source: SourceFile, Priority: PriorityBulk},
		[]Message{{Channel: "sms", Recipient: "+1", Body: "other job"}, {Channel: "email", Recipient: "a@b.example", Body: "other channel"}})
	if err != nil {
		t.Fatal(err)
	}
	jobList := idList([]int64{j.ID, other.ID})
	for _, limit := range []int{1, 256, 1000} {
		raw, err := s.candidates(ctx, jobList, "sms", time.Now(), limit)
		if err != nil {
			t.Fatal(err)
		}
		pool, err := s.candidatesPool(ctx, jobList, "sms", time.Now(), limit)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(limit, len(ids)+1); len(raw) != want {
			t.Fatalf("limit %d: %d candidates, want %d", limit, len(raw), want)
		}
		if !reflect.DeepEqual(raw, pool) {
			for i := range min(len(raw), len(pool)) {
				if !reflect.DeepEqual(raw[i], pool[i]) {
					t.Fatalf("limit %d, candidate %d:\nraw  %+v\npool %+v", limit, i, raw[i], pool[i])
				}
			}
			t.Fatalf("limit %d: %d raw candidates, %d through the pool", limit, len(raw), len(pool))
		}
	}
}
