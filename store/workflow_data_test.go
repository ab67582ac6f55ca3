package store

import (
	"encoding/json"
	"maps"
	"testing"
)

// runData reads what varsJSON and json.Marshal write, escapes and all, the
// same as encoding/json does.
func TestRunDataReadsWhatWasWritten(t *testing.T) {
	for _, m := range []map[string]string{
		nil,
		{"name": "user 1", "code": "000123"},
		{"a": "x:y,z}", "b": "", "": "v"},
		{"q": `say "hi"\n`, "tab": "a\tb", "html": "<b>&</b>", "é": "ü\u2028"},
	} {
		for _, enc := range []string{varsJSON(m), mustMarshal(t, m)} {
			var want map[string]string
			if err := json.Unmarshal([]byte(enc), &want); err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				want = nil
			}
			if got := runData(enc); !maps.Equal(got, want) {
				t.Errorf("runData(%s) = %v, want %v", enc, got, want)
			}
		}
	}
	for _, bad := range []string{`{"a":"b",}`, `{"a":"b"`, `{"a" : "b"}`, `{"a":1}`} {
		if _, ok := plainObject(bad); ok {
			t.Errorf("plainObject(%s) accepted", bad)
		}
	}
}

func mustMarshal(t *testing.T, m map[string]string) string {
	t.Helper()
	if m == nil {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
