package admin

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"
)

// checkEventsAgree fails when parseEvents takes raw but reads it otherwise
// than encoding/json (as decodeJSON reads it) does.
func checkEventsAgree(t *testing.T, raw []byte) bool {
	t.Helper()
	var fast, slow eventsRequest
	if !parseEvents(raw, &fast) {
		return false
	}
	if err := decodeEventsJSON(raw, &slow); err != nil {
		t.Fatalf("parseEvents took %q, encoding/json refuses it: %v", raw, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q:\nparseEvents  %+v\nencoding/json %+v", raw, fast, slow)
	}
	return true
}

// The usual shapes are read by parseEvents, as encoding/json reads them;
// the others are left to encoding/json.
func TestParseEventsAgreesWithEncodingJSON(t *testing.T) {
	taken := []string{
		`{"partner": "acme", "events": [{"id": "s-1", "event": "signup", "phone": "+351910000001", "data": {"name": "user 1", "code": "000001"}}]}`,
		`{"event":"cart_abandoned","email":"ana@example.com","key":"c1","occurred_at":"2026-11-30T10:00:00Z","data":{"n":-1.5e+3,"ok":true,"no":false,"z":null,"é":"ção"}}`,
		" \n{ \"events\" : [ ] }\t",
		`{"events": [{}, {"ref": "r"}], "partner": "beta"}`,
		`{"data": {}}`,
		`{}`,
	}
	for _, raw := range taken {
		if !checkEventsAgree(t, []byte(raw)) {
			t.Errorf("parseEvents left %s to encoding/json", raw)
		}
	}
	left := []string{
		`{"Event": "x"}`,                         // another case
		`{"event": "x", "event": "y"}`,           // repeated key
		`{"event": "a\u0041"}`,                   // escape
		`{"event": null}`,                        // null
		`{"data": {"o": {"a": 1}}}`,              // nested data
		`{"data": {"n": 01}}`,                    // not JSON
		`{"events": [{"event": "x"}]} {}`,        // trailing text
		`{"events": [{"event": "x", "bad": 1}]}`, // unknown field
		"{\"event\": \"\xff\"}",                  // invalid UTF-8
		`{"event": "x"`,                          // cut
		`{"id": 5}`,                              // a number for a string
	}
	for _, raw := range left {
		if checkEventsAgree(t, []byte(raw)) {
			t.Errorf("parseEvents took %s", raw)
		}
	}
}

func FuzzEventsDecodeAgreesWithEncodingJSON(f *testing.F) {
	f.Add([]byte(`{"partner": "acme", "events": [{"id": "s-1", "event": "signup", "phone": "+351910000001", "data": {"name": "user 1", "code": 12}}]}`))
	f.Add([]byte(`{"event":"e","email":"a@b.c","data":{"n":-0.5E+2,"t":true,"f":false,"z":null},"key":"k","ref":"r","occurred_at":"x"}`))
	f.Add([]byte(`{"events":[{},{"data":{}}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkEventsAgree(t, raw)
	})
}

// The hand-written events answer is the JSON writeJSON wrote.
func TestEventsAnswerEncodesAsEncodingJSON(t *testing.T) {
	out := []eventAnswer{{Index: 0, ID: 7, Started: []int64{3, 4}}, {Index: 1, Duplicate: true}, {Index: 2, ID: 9, Cancelled: 2}, {Index: 3, ID: 10, Started: []int64{}}}
	rec := httptest.NewRecorder()
	if err := writeEventsAnswer(rec, 202, 3, 1, out); err != nil {
		t.Fatal(err)
	}
	want := httptest.NewRecorder()
	writeJSON(want, 202, map[string]any{"accepted": 3, "duplicates": 1, "events": out})
	var got, exp any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.Bytes())
	}
	json.Unmarshal(want.Body.Bytes(), &exp)
	if !reflect.DeepEqual(got, exp) || rec.Code != 202 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s\nwant %s", rec.Code, rec.Body.Bytes(), want.Body.Bytes())
	}
}
