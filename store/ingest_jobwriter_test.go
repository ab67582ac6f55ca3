package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

func TestVarsJSONMatchesEncodingJSON(t *testing.T) {
	for _, vars := range []map[string]string{
		{"a": "1"},
		{"first_name": "José", "quote": `say "hi"\now`, "ctl": "a\x01b\tc\r\n", "bad": "x\xffy", "sep": "a\u2028b", "html": "<b>&</b>"},
		{"": "", "z": "last", "m": "middle"},
	} {
		got := varsJSON(vars)
		var back map[string]string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("varsJSON(%q) = %s: %v", vars, got, err)
		}
		want, _ := json.Marshal(vars)
		var wantBack map[string]string
		json.Unmarshal(want, &wantBack)
		if !reflect.DeepEqual(back, wantBack) {
			t.Errorf("varsJSON round trip = %q, encoding/json gives %q", back, wantBack)
		}
	}
}

func TestJobWriterInsertsMultiRowBatchesInOrder(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fileID, err := s.CreateFile(ctx, File{Partner: "p", Name: "inbox/a.csv"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.BeginFileJob(ctx, "p", fileID, "inbox/a.csv", 150)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*150 + rowsPerInsert + 7 // full batches, then a remainder with a partial statement
	for i := range n {
		if err := w.Add(Message{Partner: "p", Channel: "sms", Line: i + 2, Recipient: "+351912345678", Body: "b" + strconv.Itoa(i),
			Vars: map[string]string{"i": strconv.Itoa(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx, n, nil); err != nil {
		t.Fatal(err)
	}
	i := 0
	err = s.JobMessages(ctx, w.JobID(), "", 0, 0, func(m Message) error {
		if m.Line != i+2 || m.Body != "b"+strconv.Itoa(i) || m.Vars["i"] != strconv.Itoa(i) || m.Status != MsgQueued {
			t.Fatalf("message %d = %+v", i, m)
		}
		i++
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("read %d messages (%v), want %d", i, err, n)
	}
}
