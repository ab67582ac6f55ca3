package sender

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// The direct path (httpconn.go): a worker's own connection, written and
// read on its goroutine.

// rawProvider is a TCP server on 127.0.0.1 that hands each connection to
// serve (n: 1-based connection number), for answers net/http's server
// would not give.
type rawProvider struct {
	URL   string
	conns atomic.Int32
}

func newRawProvider(t *testing.T, serve func(n int, c net.Conn, br *bufio.Reader)) *rawProvider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rawProvider{URL: "http://" + ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			n := int(p.conns.Add(1))
			wg.Go(func() {
				defer c.Close()
				serve(n, c, bufio.NewReader(c))
			})
		}
	})
	return p
}

// readRequest reads one request and its body; false when the client went.
func readRequest(br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err == nil
}

// answerID writes a keep-alive 200 answer with id.
func answerID(c net.Conn, id string) {
	body := `{"id": "` + id + `"}`
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// directDriver is an http driver for url as the sender makes it, which must
// take the direct path; closed when the test ends.
func directDriver(t *testing.T, url string, tlsConf *tls.Config) *httpDriver {
	t.Helper()
	cfg := testConfig(t, httpChannel(url))
	d, err := newHTTPDriver("channel[0]", &cfg.Channels[0], nil, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	if d.direct == nil {
		t.Fatal("the driver does not take the direct path")
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func testMessage(i int) *store.Message {
	return &store.Message{Recipient: "+1", Body: fmt.Sprintf("x%d", i), Key: fmt.Sprintf("k%d", i)}
}

// countedServer starts an httptest server of h, closed when the test
// ends, with its connections counted as countConns does.
func countedServer(t *testing.T, h http.Handler) (srv *httptest.Server, accepted, open *atomic.Int32) {
	srv = httptest.NewUnstartedServer(h)
	accepted, open = countConns(srv)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, accepted, open
}

// countConns makes srv count the connections it accepted and has open.
func countConns(srv *httptest.Server) (accepted, open *atomic.Int32) {
	accepted, open = new(atomic.Int32), new(atomic.Int32)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			accepted.Add(1)
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	return accepted, open
}

// A worker's connection left unused is closed by the idle timer (as
// http.Transport's IdleConnTimeout would), and the worker's next message
// goes out on a new one, not through a failed write on the closed one.
func TestHTTPDirectClosesAnIdleConnection(t *testing.T) {
	var keys []string
	var mu sync.Mutex
	srv, accepted, open := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		io.WriteString(w, `{"id": "`+r.Header.Get("Idempotency-Key")+`"}`)
	}))
	d := directDriver(t, srv.URL, nil)
	d.direct.idleTimeout = 20 * time.Millisecond
	w, done := d.session()
	defer done()
	if _, err := w.Send(context.Background(), testMessage(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the idle connection to close", func() bool { return open.Load() == 0 })
	if id, err := w.Send(context.Background(), testMessage(1)); err != nil || id != "k1" {
		t.Fatalf("the send after the idle close = %q, %v", id, err)
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("the provider accepted %d connections, want 2 (one closed idle, one new)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(keys, []string{"k0", "k1"}) {
		t.Errorf("the provider got %v, want each message once", keys)
	}
}

func TestHTTPDirectWorkerKeepsOneConnection(t *testing.T) {
	srv, accepted, _ := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"id": "`+r.Header.Get("Idempotency-Key")+`"}`)
	}))
	d := directDriver(t, srv.URL, nil)
	w, done := d.session()
	defer done()
	for i := range 20 {
		id, err := w.Send(context.Background(), testMessage(i))
		if err != nil || id != fmt.Sprintf("k%d", i) {
			t.Fatalf("send %d = %q, %v", i, id, err)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("the provider accepted %d connections for 20 messages of one worker, want 1", n)
	}
}

func TestHTTPDirectRetriesOnceWhenAnIdleConnectionWasClosed(t *testing.T) {
	// Each connection gets one answer and is closed, as a provider closes
	// an idle keep-alive connection; the third is closed unanswered.
	p := newRawProvider(t, func(n int, c net.Conn, br *bufio.Reader) {
		if !readRequest(br) {
			return
		}
		if n <= 2 {
			answerID(c, fmt.Sprintf("c%d", n))
		}
	})
	d := directDriver(t, p.URL, nil)
	w, done := d.session()
	defer done()
	ctx := context.Background()
	if id, err := w.Send(ctx, testMessage(1)); err != nil || id != "c1" {
		t.Fatalf("first send = %q, %v", id, err)
	}
	// The connection is stale: sent again once, on a new one.
	if id, err := w.Send(ctx, testMessage(2)); err != nil || id != "c2" {
		t.Fatalf("send on a closed idle connection = %q, %v; want c2 on a new connection", id, err)
	}
	// Stale again, and the new connection is closed unanswered too: one
	// retry only, the error is the new connection's.
	if id, err := w.Send(ctx, testMessage(3)); err == nil || !strings.Contains(err.Error(), `Post "`+p.URL) {
		t.Fatalf("send = %q, %v; want the new connection's error", id, err)
	}
	if n := p.conns.Load(); n != 3 {
		t.Errorf("connections = %d, want 3 (one retry per send at most)", n)
	}
}

func TestHTTPDirectDoesNotRetryOnceTheAnswerStarted(t *testing.T) {
	p := newRawProvider(t, func(n int, c net.Conn, br *bufio.Reader) {
		for i := 1; readRequest(br); i++ {
			if n == 1 && i == 2 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le") // and the connection breaks
				return
			}
			answerID(c, fmt.Sprintf("c%d-%d", n, i))
		}
	})
	d := directDriver(t, p.URL, nil)
	w, done := d.session()
	defer done()
	ctx := context.Background()
	if id, err := w.Send(ctx, testMessage(1)); err != nil || id != "c1-1" {
		t.Fatalf("first send = %q, %v", id, err)
	}
	if id, err := w.Send(ctx, testMessage(2)); err == nil {
		t.Fatalf("send with a broken answer = %q, want an error (the provider may have taken it)", id)
	}
	if n := p.conns.Load(); n != 1 {
		t.Errorf("connections = %d, want 1: no retry once the answer started", n)
	}
	if id, err := w.Send(ctx, testMessage(3)); err != nil || id != "c2-1" {
		t.Errorf("next send = %q, %v; want c2-1 on a new connection", id, err)
	}
}

func TestHTTPDirectClosesWhatTheProviderDoesNotKeepAlive(t *testing.T) {
	for name, answer := range map[string]string{
		"connection close": "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\n{\"id\": \"%d\"}",
		"http 1.0":         "HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\n{\"id\": \"%d\"}",
		"http 1.0 kept":    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 11\r\n\r\n{\"id\": \"%d\"}",
	} {
		t.Run(name, func(t *testing.T) {
			// The provider answers once, then never again on that
			// connection: a request sent there waits out its timeout.
			p := newRawProvider(t, func(n int, c net.Conn, br *bufio.Reader) {
				if readRequest(br) {
					fmt.Fprintf(c, answer, n)
					io.Copy(io.Discard, br)
				}
			})
			d := directDriver(t, p.URL, nil)
			w, done := d.session()
			defer done()
			// One context for both, as a worker's: a context's end
			// closes the connection it watched.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i := 1; i <= 2; i++ {
				id, err := w.Send(ctx, testMessage(i))
				if err != nil || id != fmt.Sprint(i) {
					t.Fatalf("send %d = %q, %v; want it on connection %d", i, id, err, i)
				}
			}
		})
	}
}

func TestHTTPDirectSpeaksHTTP11OverTLS(t *testing.T) {
	var protos sync.Map
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		protos.Store(r.Proto, r.TLS != nil)
		io.WriteString(w, `{"id": "tls-1"}`)
	}))
	srv.EnableHTTP2 = true // offered; the direct path asks for http/1.1 only
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	accepted, _ := countConns(srv)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	d := directDriver(t, srv.URL, &tls.Config{RootCAs: roots})
	w, done := d.session()
	defer done()
	for i := range 3 {
		if id, err := w.Send(context.Background(), testMessage(i)); err != nil || id != "tls-1" {
			t.Fatalf("send %d = %q, %v", i, id, err)
		}
	}
	protos.Range(func(k, v any) bool {
		if k != "HTTP/1.1" || v != true {
			t.Errorf("the provider saw %v (TLS %v), want HTTP/1.1 over TLS only", k, v)
		}
		return true
	})
	if n := accepted.Load(); n != 1 {
		t.Errorf("connections = %d, want 1", n)
	}

	// Without the test's roots the provider's certificate is refused.
	untrusted := directDriver(t, srv.URL, nil)
	if _, err := untrusted.Send(context.Background(), testMessage(9)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("send to an untrusted certificate: %v, want a certificate error", err)
	}
}

func TestHTTPProxiedChannelKeepsTheTransport(t *testing.T) {
	var seen atomic.Value
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		seen.Store(r.RequestURI)
		io.WriteString(w, `{"id": "via-proxy"}`)
	}))
	t.Cleanup(proxy.Close)
	proxyURL, _ := url.Parse(proxy.URL)
	old := httpProxy
	httpProxy = func(*http.Request) (*url.URL, error) { return proxyURL, nil }
	t.Cleanup(func() { httpProxy = old })

	target := fmt.Sprintf("http://127.0.0.1:%d", closedPort(t)) // reachable only through the proxy
	cfg := testConfig(t, httpChannel(target))
	d, err := newHTTPDriver("channel[0]", &cfg.Channels[0], nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.direct != nil {
		t.Error("a proxied channel takes the direct path")
	}
	if id, err := d.Send(context.Background(), testMessage(1)); err != nil || id != "via-proxy" {
		t.Fatalf("send = %q, %v; want it through the proxy", id, err)
	}
	if got := seen.Load(); got != target+"/v1/messages" {
		t.Errorf("the proxy saw %v, want the absolute URL", got)
	}
}

func TestHTTPSenderClosesItsConnectionsWhenItStops(t *testing.T) {
	srv, accepted, open := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"id": "ok"}`)
	}))
	cc := httpChannel(srv.URL)
	cc.Concurrency = 3
	cfg := testConfig(t, cc)
	st := openStore(t, cfg)
	j := queueJob(t, st, "acme", store.SourceAPI, store.PriorityBulk, "sms", 60)
	stop := start(t, newSender(t, cfg, st))
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	// The probe's connection and one per worker at most.
	if n := accepted.Load(); n > int32(cc.Concurrency)+1 {
		t.Errorf("the provider accepted %d connections, want at most %d", n, cc.Concurrency+1)
	}
	stop()
	waitFor(t, 10*time.Second, "the provider's connections to close", func() bool { return open.Load() == 0 })
}

func TestHTTPDriverCloseEndsItsIdleConnections(t *testing.T) {
	srv, accepted, open := countedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"id": "ok"}`)
	}))
	d := directDriver(t, srv.URL, nil)
	for i := range 5 { // Send outside a worker: a spare session
		if _, err := d.Send(context.Background(), testMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("connections = %d, want 1", n)
	}
	d.Close()
	waitFor(t, 10*time.Second, "the provider's connection to close", func() bool { return open.Load() == 0 })
	if _, err := d.Send(context.Background(), testMessage(9)); err == nil {
		t.Error("a closed driver still sends")
	}
}
