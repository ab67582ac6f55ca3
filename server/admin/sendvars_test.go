package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
)

// referenceVars is how vars were read before sendVars: into map[string]any
// with json.Number, then each scalar made text.
func referenceVars(raw []byte) (map[string]string, []string, error) {
	var in map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return nil, nil, err
	}
	if in == nil {
		return nil, nil, nil
	}
	out := map[string]string{}
	var bad []string
	for k, v := range in {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = fmt.Sprint(v)
		case nil:
			out[k] = ""
		default:
			bad = append(bad, k)
		}
	}
	slices.Sort(bad)
	return out, bad, nil
}

func checkVarsAgree(t *testing.T, raw []byte) {
	t.Helper()
	want, wantBad, werr := referenceVars(raw)
	var got *sendVars
	gerr := json.Unmarshal(raw, &got)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%s: error %v, reference %v", raw, gerr, werr)
	}
	if werr != nil {
		return
	}
	var m map[string]string
	var bad []string
	if got != nil {
		m, bad = got.m, slices.Sorted(slices.Values(got.bad))
	}
	if want == nil && len(wantBad) == 0 {
		if got != nil {
			t.Fatalf("%s: got %+v, want no vars", raw, got)
		}
		return
	}
	// A name given twice, once as an object: the reference keeps the last.
	for _, b := range bad {
		if _, ok := want[b]; ok {
			return
		}
	}
	if !maps.Equal(m, want) || !slices.Equal(bad, wantBad) {
		t.Fatalf("%s:\n got %q bad %q\nwant %q bad %q", raw, m, bad, want, wantBad)
	}
}

// sendVars reads vars exactly as decoding into map[string]any and making
// each scalar text did.
func TestSendVarsAgreeWithGenericDecode(t *testing.T) {
	for _, raw := range []string{
		`{}`, ` { } `, `null`, `{"name":"Ana","code":"0012"}`, `{"n": 12, "f": -1.5e3, "t": true, "x": false, "z": null}`,
		`{"esc":"a\"b\\c\u00e9\n","ünï":"çödé"}`, `{"o":{"a":[1,{"b":"}"}]},"k":"v"}`, `{"a":[],"b":"]"}`,
		"{\"bad\":\"\xff\xfe\"}", `{"dup":"1","dup":"2"}`, `{ "sp" : "x" , "n" : 0 }`, `[]`, `"x"`, `12`,
	} {
		checkVarsAgree(t, []byte(raw))
	}
}

func FuzzSendVarsAgreeWithGenericDecode(f *testing.F) {
	f.Add([]byte(`{"name":"Ana","code":12,"ok":true,"no":null,"o":{"a":[1]}}`))
	f.Add([]byte(`{"e":"\u0041\\\"","x":-0.5E+2}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		checkVarsAgree(t, raw)
	})
}

// The hand-written send answer is the JSON encoding/json wrote.
func TestSendAnswerEncodesAsEncodingJSON(t *testing.T) {
	out := []sentMessage{{ID: 1, To: "+351912345678", Ref: "r-1", Status: "queued"}, {ID: 2, To: "a\"b\\<c>&é\n", Status: ""}}
	rec := httptest.NewRecorder()
	if err := writeSendAnswer(rec, 202, 7, out); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(map[string]any{"job_id": 7, "messages": out})
	var got, exp any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.Bytes())
	}
	json.Unmarshal(want, &exp)
	if !reflect.DeepEqual(got, exp) || rec.Code != 202 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s\nwant %s", rec.Code, rec.Body.Bytes(), want)
	}
}
