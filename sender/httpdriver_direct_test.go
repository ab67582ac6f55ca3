package sender

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
)

// The driver posts through its transport, not http.Client (session 8):
// what the client did on top must still happen.

func TestHTTPRedirectIsFollowedWithTheSameRequest(t *testing.T) {
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		if r.Path == "/v1/messages" {
			w.Header().Set("Location", "/v2/messages")
			w.WriteHeader(http.StatusPermanentRedirect)
			io.WriteString(w, "moved")
			return
		}
		io.WriteString(w, `{"id": "moved-1"}`)
	})
	st, j, id := sendOneAPIMessage(t, httpChannel(p.URL))
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	m, _ := st.Message(context.Background(), id)
	if m.Status != store.MsgSent || m.ProviderID != "moved-1" {
		t.Errorf("message = %+v, want sent with provider id moved-1", m)
	}
	reqs := p.Requests()
	last := reqs[len(reqs)-1]
	if last.Path != "/v2/messages" || last.Method != http.MethodPost || last.Body != reqs[0].Body ||
		last.Header.Get("Idempotency-Key") != st.MessageKey(id) {
		t.Errorf("requests = %+v, want the same POST again at /v2/messages", reqs)
	}
}

func TestHTTPUserInfoInTheURLIsSentAsBasicAuth(t *testing.T) {
	p := newProviderSink(t, nil)
	cc := httpChannel(strings.Replace(p.URL, "http://", "http://acct:pa55@", 1))
	st, j, _ := sendOneAPIMessage(t, cc)
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	reqs := p.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Basic YWNjdDpwYTU1" {
		t.Errorf("requests = %+v, want one with basic auth acct:pa55", reqs)
	}
}

func TestHTTPUnreachableProviderErrorNamesTheRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	cc := httpChannel(url)
	cc.MaxAttempts = 1
	st, j, id := sendOneAPIMessage(t, cc)
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	m, _ := st.Message(context.Background(), id)
	want := `POST ` + url + `/v1/messages: Post "` + url + `/v1/messages": dial tcp`
	if m.Status != store.MsgFailed || !strings.Contains(m.LastError, want) {
		t.Errorf("message = %+v, want failed with an error holding %q", m, want)
	}
}
