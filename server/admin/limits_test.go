package admin

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// startServer runs a real admin server on 127.0.0.1:0 with cfg's [admin]
// limits, and returns its address.
func startServer(t *testing.T, tune func(*config.Config, *Options)) (string, *store.Store) {
	t.Helper()
	st := storetest.Open(t)
	cfg := config.Default()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Admin.Tokens = []string{adminToken}
	cfg.Partners = []config.Partner{{Name: "acme", APIKey: partnerToken, Channels: []string{"sms"}}}
	opts := Options{Config: cfg, Store: st,
		Compose: func(ctx context.Context, partner string, req ingest.APISend) (ingest.Composed, []ingest.Problem, error) {
			return ingest.Composed{}, []ingest.Problem{{Message: "test server composes nothing"}}, nil
		}}
	if tune != nil {
		tune(cfg, &opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s.Addr().String(), st
}

// trickle sends a POST whose 100 KB body arrives a byte at a time, and
// returns the status the server answers with while the body is still
// arriving.
func trickle(addr, token string) (int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	fmt.Fprintf(conn, "POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: 100000\r\n\r\n{", auth)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	// A generous failsafe only: the body would take over half an hour.
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// 40 clients trickling a body: those without a token are refused before
// their body is read (401), those with one are cut off at the body
// deadline (408); none holds the server until its body is complete.
func TestTricklingBodiesAreRefusedOrTimedOut(t *testing.T) {
	addr, _ := startServer(t, func(c *config.Config, _ *Options) {
		c.Admin.BodyTimeout = config.Duration(300 * time.Millisecond)
		c.Admin.PartnerRate = 0
	})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		token, want := "", http.StatusUnauthorized
		if i%2 == 1 {
			token, want = partnerToken, http.StatusRequestTimeout
		}
		wg.Go(func() {
			got, err := trickle(addr, token)
			if err != nil || got != want {
				errs <- fmt.Errorf("client %d: status %d, %v; want %d", i, got, err, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func rawPost(t *testing.T, addr, body string, declared int, closeWrite bool) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		partnerToken, declared, body)
	if closeWrite {
		conn.(*net.TCPConn).CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.StatusCode, b.String()
}

// An oversized body is 413; a client that hangs up part-way is not.
func TestOversizedBodyIs413AndAHangUpIsNot(t *testing.T) {
	addr, _ := startServer(t, func(c *config.Config, _ *Options) { c.Admin.MaxBody = 2048 })
	big := `{"to":"` + strings.Repeat("x", 4000) + `"}`
	if code, body := rawPost(t, addr, big, len(big), false); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "admin.max_body") {
		t.Fatalf("oversized: %d %s", code, body)
	}
	if code, body := rawPost(t, addr, `{"to":`, 1000, true); code == http.StatusRequestEntityTooLarge || !strings.Contains(body, "incomplete_body") {
		t.Fatalf("hang-up: %d %s", code, body)
	}
}

// A partner key has a token bucket: past its burst it gets 429 with
// Retry-After until the bucket refills; admin tokens are not limited.
func TestPartnerKeyIsRateLimitedWithRetryAfter(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	addr, _ := startServer(t, func(c *config.Config, o *Options) {
		c.Admin.PartnerRate, c.Admin.PartnerBurst = 0.5, 2
		o.Now = clock
	})
	get := func(token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/jobs", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 2 {
		if r := get(partnerToken); r.StatusCode != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, r.StatusCode)
		}
	}
	r := get(partnerToken)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "2" {
		t.Fatalf("past the burst: %d, Retry-After %q; want 429 and 2", r.StatusCode, r.Header.Get("Retry-After"))
	}
	for range 5 {
		if r := get(adminToken); r.StatusCode != http.StatusOK {
			t.Fatalf("admin token limited: %d", r.StatusCode)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if r := get(partnerToken); r.StatusCode != http.StatusOK {
		t.Fatalf("after the refill: %d", r.StatusCode)
	}
}

// The job list is capped and paged by a cursor: following next_before
// visits every job once, newest first.
func TestJobListPagesWithACursor(t *testing.T) {
	f := newFixture(t)
	var want []float64
	for range 5 {
		j := f.job(t, "acme", 1)
		want = append([]float64{float64(j.ID)}, want...)
	}
	var got []float64
	path := "/api/v1/jobs?limit=2"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("the cursor does not end")
		}
		code, body := f.do(t, "GET", path, adminToken)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		for _, j := range body["jobs"].([]any) {
			got = append(got, j.(map[string]any)["id"].(float64))
		}
		next, ok := body["next_before"].(float64)
		if !ok {
			break
		}
		path = fmt.Sprintf("/api/v1/jobs?limit=2&before=%d", int64(next))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged ids %v, want %v", got, want)
	}
}
