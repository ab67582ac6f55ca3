package ingest

import (
	"testing"

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
}
