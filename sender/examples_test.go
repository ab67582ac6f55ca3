package sender

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// loadExample parses testdata/sender/<name> with the given environment.
func loadExample(t *testing.T, name string, env map[string]string) *config.Config {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "sender", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := config.Parse(f, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Sender.PollInterval = config.Duration(10 * time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sendOne queues one message for partner acme and waits for its outcome.
func sendOne(t *testing.T, cfg *config.Config, m store.Message) store.Message {
	t.Helper()
	st := openStore(t, cfg)
	j, ids, err := st.CreateJob(context.Background(), store.Job{Partner: "acme", Source: store.SourceAPI}, []store.Message{m})
	if err != nil {
		t.Fatal(err)
	}
	start(t, newSender(t, cfg, st))
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)
	got, err := st.Message(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestExampleJSONSMSProviderSendsTheDocumentedRequest(t *testing.T) {
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		io.WriteString(w, `{"messages": [{"id": "mb-77", "status": "queued"}]}`)
	})
	cfg := loadExample(t, "sms-json.toml", map[string]string{"SMS_URL": p.URL + "/v1/sms", "SMS_TOKEN": "tok-123"})
	m := sendOne(t, cfg, store.Message{Channel: "sms", Recipient: "+351912345678", Body: "Hi Zé", Ref: "r-1"})
	if m.Status != store.MsgSent || m.ProviderID != "mb-77" {
		t.Fatalf("message = %+v", m)
	}
	r := p.Requests()[0]
	want := `{"to": "+351912345678", "text": "Hi Zé", "reference": "` + m.Key + `", "client_ref": "r-1"}`
	if r.Method != "POST" || r.Path != "/v1/sms" || r.Body != want {
		t.Errorf("request = %s %s %s\nwant body %s", r.Method, r.Path, r.Body, want)
	}
	for h, v := range map[string]string{"Authorization": "Bearer tok-123", "Content-Type": "application/json", "Idempotency-Key": m.Key} {
		if got := r.Header.Get(h); got != v {
			t.Errorf("%s = %q, want %q", h, got, v)
		}
	}
}

func TestExampleFormBasicAuthProviderSendsTheDocumentedRequest(t *testing.T) {
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"sid": "SM123", "status": "queued"}`)
	})
	cfg := loadExample(t, "sms-form-basic.toml", map[string]string{"SMS_URL": p.URL + "/2010-04-01/Messages.json",
		"SMS_USER": "AC42", "SMS_PASSWORD": "pw:secret"})
	m := sendOne(t, cfg, store.Message{Channel: "sms-basic", Recipient: "+351912345678", Body: "Hi Zé & co"})
	if m.Status != store.MsgSent || m.ProviderID != "SM123" {
		t.Fatalf("message = %+v", m)
	}
	r := p.Requests()[0]
	want := "To=%2B351912345678&From=Acme&Body=Hi+Z%C3%A9+%26+co&StatusCallback=https%3A%2F%2Fhooks.acme.example%2Fsms%3Fid%3D" + m.Key
	if r.Body != want {
		t.Errorf("body = %s\nwant   %s", r.Body, want)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("AC42:pw:secret"))
	for h, v := range map[string]string{"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded",
		"Idempotency-Key": m.Key, "X-Dropgate-Partner": "acme"} {
		if got := r.Header.Get(h); got != v {
			t.Errorf("%s = %q, want %q", h, got, v)
		}
	}
}

func TestExampleFormProviderTreatsOtherSuccessCodesAsRefusals(t *testing.T) {
	p := newProviderSink(t, func(w http.ResponseWriter, r sinkRequest, n int) {
		io.WriteString(w, `{"sid": "SM1"}`) // 200, but the channel only accepts 201
	})
	cfg := loadExample(t, "sms-form-basic.toml", map[string]string{"SMS_URL": p.URL, "SMS_USER": "u", "SMS_PASSWORD": "p"})
	m := sendOne(t, cfg, store.Message{Channel: "sms-basic", Recipient: "+1", Body: "x"})
	if m.Status != store.MsgFailed || m.Attempts != 1 {
		t.Errorf("message = %+v, want failed at once", m)
	}
}
