package sender

import (
	"encoding/json"
	"testing"
)

func TestJSONPointerFollowsRFC6901(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"foo":["bar","baz"],"":0,"a/b":1,"m~n":8,"~1":"tilde-one","data":{"messages":[{"id":12345678901}]}}`), &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ptr, want string }{
		{"/foo/0", "bar"},
		{"/foo/1", "baz"},
		{"/", "0"},
		{"/a~1b", "1"},
		{"/m~0n", "8"},
		{"/~01", "tilde-one"},
		{"/data/messages/0/id", "12345678901"},
	} {
		v, err := jsonPointer(doc, c.ptr)
		if err != nil {
			t.Errorf("%s: %v", c.ptr, err)
			continue
		}
		if got, err := jsonScalar(v); err != nil || got != c.want {
			t.Errorf("%s = %q, %v; want %q", c.ptr, got, err, c.want)
		}
	}
	for _, bad := range []string{"/nope", "/foo/2", "/foo/01", "/foo/-", "/foo/0/x", "nope"} {
		if v, err := jsonPointer(doc, bad); err == nil {
			t.Errorf("%s = %v, want an error", bad, v)
		}
	}
	if _, err := jsonScalar(map[string]any{}); err == nil {
		t.Error("an object is not an id")
	}
}

func FuzzJSONPointerNeverPanics(f *testing.F) {
	f.Add(`{"a":[{"b":1}]}`, "/a/0/b")
	f.Add(`[1,2]`, "/-")
	f.Add(`{"~":{"/":2}}`, "/~0/~1")
	f.Fuzz(func(t *testing.T, doc, ptr string) {
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		if got, err := jsonPointer(v, ptr); err == nil {
			jsonScalar(got)
		}
	})
}

// providerIDAt reads the id from the raw answer exactly as decoding the
// whole answer and following the pointer did.
func FuzzProviderIDMatchesFullDecode(f *testing.F) {
	f.Add(`{"id":"p1"}`, "/id")
	f.Add(`{"id":"a","id":"b"}`, "/id")
	f.Add(` {"data" : [ {"x":[1,{"}":"]"}]}, {"id": 12345678901234567890} ] } `, "/data/1/id")
	f.Add(`{"a\u002fb":"esc","a/b":"x"}`, "/a~1b")
	f.Add(`{"é":"\u00e9\n"}`, "/é")
	f.Add(`[true,null,"z"]`, "/0")
	f.Add(`[true,null,"z"]`, "/+1")
	f.Add(`{"id":"p1"`, "/id")
	f.Add(`"top"`, "")
	f.Fuzz(func(t *testing.T, doc, ptr string) {
		want := ""
		var v any
		if json.Unmarshal([]byte(doc), &v) == nil {
			if got, err := jsonPointer(v, ptr); err == nil {
				want, _ = jsonScalar(got)
			}
		}
		if got := providerIDAt([]byte(doc), ptr); got != want {
			t.Fatalf("providerIDAt(%q, %q) = %q, want %q", doc, ptr, got, want)
		}
	})
}
