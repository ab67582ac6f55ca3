package ingest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/segment"
	"github.com/dropgate/dropgate/store"
)

var benchAttrFields = map[string]string{"city": store.FieldString, "first_name": store.FieldString, "last_order_at": store.FieldTime,
	"order_id": store.FieldString, "orders": store.FieldInteger, "vip": store.FieldBoolean}

var benchAttrs = []byte(`{"city":"Lisboa","first_name":"Gabriela","last_order_at":"2026-10-31T09:00:00Z","order_id":"ORD-0000123","orders":4,"vip":true}`)

func BenchmarkAttrDecode(b *testing.B) {
	names, _ := segmentNames(benchSegment)
	for _, c := range []struct {
		name          string
		values, texts map[string]bool
	}{{"all", nil, nil}, {"segment", names, map[string]bool{}}, {"segment+template", names, map[string]bool{"first_name": true, "order_id": true}}} {
		b.Run(c.name, func(b *testing.B) {
			d := newAttrDecoder(benchAttrFields, c.values, c.texts)
			values, text := map[string]any{}, map[string]string{}
			for b.Loop() {
				if err := d.decode(benchAttrs, values, text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Every value new (no two members share a time or a count): the
	// decoder's memo of each name's last value never helps.
	b.Run("segment/distinct", func(b *testing.B) {
		objects := make([][]byte, 1000)
		t0 := time.Date(2026, 10, 31, 9, 0, 0, 0, time.UTC)
		for i := range objects {
			objects[i] = fmt.Appendf(nil, `{"city":"Lisboa","first_name":"Gabriela","last_order_at":%q,"order_id":"ORD-%07d","orders":%d,"vip":true}`,
				t0.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), i, 1000+i)
		}
		d := newAttrDecoder(benchAttrFields, names, map[string]bool{})
		values, text := map[string]any{}, map[string]string{}
		i := 0
		for b.Loop() {
			if err := d.decode(objects[i%len(objects)], values, text); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("AttributeValues", func(b *testing.B) {
		for b.Loop() {
			store.AttributeValues(benchAttrs, benchAttrFields)
		}
	})
	b.Run("match", func(b *testing.B) {
		e, _ := segment.Compile(benchSegment, segment.Options{})
		d := newAttrDecoder(benchAttrFields, nil, nil)
		values, text := map[string]any{}, map[string]string{}
		d.decode(benchAttrs, values, text)
		for b.Loop() {
			e.Match(values)
		}
	})
	b.Run("matcher", func(b *testing.B) {
		e, _ := segment.Compile(benchSegment, segment.Options{})
		m := e.Matcher()
		d := newAttrDecoder(benchAttrFields, nil, nil)
		values, text := map[string]any{}, map[string]string{}
		d.decode(benchAttrs, values, text)
		for b.Loop() {
			m.Match(values)
		}
	})
}

// The scanner gives what store.AttributeValues gives (and each value's
// text as stored), on objects it takes and objects it leaves to
// encoding/json.
func TestAttrDecoderAgreesWithAttributeValues(t *testing.T) {
	fields := map[string]string{"n": store.FieldInteger, "x": store.FieldNumber, "b": store.FieldBoolean, "at": store.FieldTime, "s": store.FieldString,
		"big": store.FieldInteger, "badtime": store.FieldTime}
	objects := []string{
		`{}`,
		` { } `,
		`{"n":42,"x":1.5,"b":true,"at":"2026-01-02T03:04:05Z","s":"Lisboa"}`,
		`{"n":-7,"x":2,"b":false,"s":""}`,
		`{"big":12345678901234567890}`,
		`{"n":1e3,"x":-0.25e-2}`,
		`{"badtime":"not a time","at":"2026-01-02T03:04:05.123+01:00"}`,
		`{"s":"caf\u00e9 \"quoted\""}`,
		`{"s":"Zé Ñandú"}`,
		`{"s":null,"n":3}`,
		`{"nested":{"a":1},"list":[1,2],"n":1}`,
		`{"n":1,"n":2}`,
		`{ "s" : "a" , "n" : 2 }`,
		"{\"s\":\"bad \xff byte\"}",
		// The same bytes as another kind, and values met again: the
		// decoder's memo of each name's last value must tell them apart.
		`{"n":"42","s":42,"at":"2026-01-02T03:04:05Z"}`,
		`{"n":42,"s":"42","at":"2026-01-02T03:04:05Z","x":1.5}`,
		`{"n":42,"s":"42","at":"not a time","x":"1.5"}`,
		`{"n":1.5,"x":1.5,"b":true,"at":"2026-01-02T03:04:05Z"}`,
	}
	// One decoder across all the objects, in order and back, as a list
	// send's worker uses it: each decode must be what a fresh one gives.
	shared := newAttrDecoder(fields, nil, nil)
	sharedPart := newAttrDecoder(fields, map[string]bool{"n": true, "at": true}, map[string]bool{"s": true})
	objects = append(objects, objects...)
	slices.Reverse(objects[len(objects)/2:])
	for _, raw := range objects {
		want, err := store.AttributeValues([]byte(raw), fields)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		d := newAttrDecoder(fields, nil, nil)
		values, text := map[string]any{}, map[string]string{}
		if err := d.decode([]byte(raw), values, text); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if fmt.Sprint(values) != fmt.Sprint(want) || len(values) != len(want) {
			t.Errorf("%s: values %v, want %v", raw, values, want)
		}
		for name, v := range want {
			if fmt.Sprintf("%T", values[name]) != fmt.Sprintf("%T", v) {
				t.Errorf("%s: %s is %T, want %T", raw, name, values[name], v)
			}
		}
		var texts map[string]json.RawMessage
		json.Unmarshal([]byte(raw), &texts)
		for name, tv := range texts {
			var s string
			wantText, ok := string(tv), string(tv) != "null"
			if json.Unmarshal(tv, &s) == nil {
				wantText = s
			}
			if got, has := text[name]; has != ok || (ok && got != wantText) {
				t.Errorf("%s: text of %s = %q (%v), want %q", raw, name, got, has, wantText)
			}
		}
		sv, st := map[string]any{"stale": 1}, map[string]string{"stale": ""}
		if err := shared.decode([]byte(raw), sv, st); err != nil {
			t.Fatalf("%s: shared decoder: %v", raw, err)
		}
		if !reflect.DeepEqual(sv, values) || !reflect.DeepEqual(st, text) {
			t.Errorf("%s: shared decoder gives %v %q, a fresh one %v %q", raw, sv, st, values, text)
		}
		// Asking for some names gives those names' values and texts only.
		part := newAttrDecoder(fields, map[string]bool{"n": true, "at": true}, map[string]bool{"s": true})
		pv, pt := map[string]any{}, map[string]string{}
		if err := part.decode([]byte(raw), pv, pt); err != nil {
			t.Fatal(err)
		}
		spv, spt := map[string]any{}, map[string]string{}
		if err := sharedPart.decode([]byte(raw), spv, spt); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(spv, pv) || !reflect.DeepEqual(spt, pt) {
			t.Errorf("%s: shared partial decoder gives %v %q, a fresh one %v %q", raw, spv, spt, pv, pt)
		}
		for name, v := range pv {
			if name != "n" && name != "at" || fmt.Sprint(v) != fmt.Sprint(want[name]) {
				t.Errorf("%s: partial value %s = %v", raw, name, v)
			}
		}
		for name, v := range pt {
			if name != "s" || v != text[name] {
				t.Errorf("%s: partial text %s = %q", raw, name, v)
			}
		}
	}
}

// A segment evaluated on the names segmentNames finds matches exactly as
// on every attribute.
func TestSegmentNamesGiveTheSameMatches(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) }
	contacts := []string{
		`{"city":"Lisbon","orders":3,"last_order_at":"2026-02-20T10:00:00Z","vip":true,"tags":"a,b","first_name":"Ana"}`,
		`{"city":"Porto","orders":1,"last_order_at":"2025-01-01T00:00:00Z","vip":false,"first_name":"Rui"}`,
		`{"city":"Lisbon","first_name":"Eva"}`,
		`{}`,
	}
	fields := map[string]string{"city": store.FieldString, "orders": store.FieldInteger, "last_order_at": store.FieldTime, "vip": store.FieldBoolean}
	for _, src := range []string{
		`city == "Lisbon" && orders > 2 && last_order_at > now() - duration("720h")`,
		`vip`,
		`let o = orders ?? 0; o >= 1 and city in ["Lisbon", "Porto"]`,
		`first_name startsWith "E" || tags contains "b"`,
		`$env["city"] == "Porto"`,
		`$env.city == "Lisbon"`,
		`len(city) == 6 && city matches "^L"`,
		`any(["Lisbon"], # == city)`,
		`city == "Lisbon" ? orders > 2 : vip`,
		`email endsWith "@example.com" || phone == "+351912000001"`,
	} {
		e, err := segment.Compile(src, segment.Options{Now: now})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		names, all := segmentNames(src)
		if strings.Contains(src, "$env") != all {
			t.Errorf("%s: all = %v", src, all)
		}
		full := newAttrDecoder(fields, nil, nil)
		part := newAttrDecoder(fields, names, map[string]bool{})
		if all {
			part = newAttrDecoder(fields, nil, map[string]bool{})
		}
		matcher := e.Matcher() // one per worker, reused across members
		for _, c := range contacts {
			fv, ft := map[string]any{"email": "ana@example.com"}, map[string]string{}
			full.decode([]byte(c), fv, ft)
			fv["email"] = "ana@example.com"
			pv, pt := map[string]any{}, map[string]string{}
			part.decode([]byte(c), pv, pt)
			pv["email"] = "ana@example.com"
			m1, err1 := e.Match(fv)
			m2, err2 := e.Match(pv)
			if m1 != m2 || (err1 == nil) != (err2 == nil) {
				t.Errorf("%s on %s: %v %v with every attribute, %v %v with %v", src, c, m1, err1, m2, err2, names)
			}
			m3, err3 := matcher.Match(pv)
			if m3 != m1 || fmt.Sprint(err3) != fmt.Sprint(err1) {
				t.Errorf("%s on %s: the reused matcher gives %v %v, Match %v %v", src, c, m3, err3, m1, err1)
			}
		}
	}
}
