package store

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkBuildInsert measures the reader's side of a file job: turning
// 5000 messages of one template (the usual shape) into the statements and
// arguments the flusher binds. Run it alone:
//
//	go test ./store -run '^$' -bench BenchmarkBuildInsert -count 5
func BenchmarkBuildInsert(b *testing.B) {
	now := time.Now()
	batch := make([]Message, 5000)
	for i := range batch {
		batch[i] = Message{Channel: "sms", Line: i + 2, Ref: "r" + strconv.Itoa(i), Recipient: "+351912345678",
			Body: "Ola Ana, a sua encomenda A-" + strconv.Itoa(i) + " foi enviada."}
	}
	w := &JobWriter{s: &Store{}, jobID: 1, created: now, spent: make(chan []any, 2)}
	b.ReportAllocs()
	for b.Loop() {
		ib := w.buildInsert(batch, now)
		w.spent <- ib.args
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/row")
}

// BenchmarkVarsJSON encodes the variables of a row of ten variable
// columns, as a file job on a channel that stores them does for every row:
//
//	go test ./store -run '^$' -bench BenchmarkVarsJSON -benchmem -count 5
func BenchmarkVarsJSON(b *testing.B) {
	vars := map[string]string{"first_name": "Ana", "last_name": "Silva", "order_id": "ORD-0001234", "city": "São Paulo",
		"product": "Widget 12", "amount": "123.45", "delivery_date": "2026-12-03", "store": "Loja 7",
		"tracking": "TRK000001234", "segment": "returning"}
	b.ReportAllocs()
	for b.Loop() {
		varsJSON(vars)
	}
}
