package sender

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// providerSink is an httptest provider that records every request and
// answers through respond (200 {"id": "..."} when nil).
type providerSink struct {
	*httptest.Server

	mu       sync.Mutex
	requests []sinkRequest
	respond  func(w http.ResponseWriter, r sinkRequest, n int) // n: 1-based request number
}

// sinkRequest is one request as the provider saw it.
type sinkRequest struct {
	Method string
	Path   string
	Header http.Header
	Body   string
	At     time.Time
	// Context ends when the client goes away.
	Context context.Context
}

func newProviderSink(t testing.TB, respond func(w http.ResponseWriter, r sinkRequest, n int)) *providerSink {
	t.Helper()
	p := &providerSink{respond: respond}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := sinkRequest{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(b), At: time.Now(), Context: r.Context()}
		p.mu.Lock()
		p.requests = append(p.requests, req)
		n, respond := len(p.requests), p.respond
		p.mu.Unlock()
		if respond == nil {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id": "prov-`+r.Header.Get("Idempotency-Key")+`"}`)
			return
		}
		respond(w, req, n)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *providerSink) Requests() []sinkRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sinkRequest(nil), p.requests...)
}
