package sender

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// The fast renderer must print exactly what text/template prints, for
// every shape it accepts, and refuse every other shape.
func TestFastTemplateMatchesTextTemplate(t *testing.T) {
	fast := []string{
		defaultJSONBody,
		defaultFormBody,
		`{"to": {{json .To}}, "text": {{json .Body}}, "reference": {{json .ID}}, "client_ref": {{json .Ref}}}`,
		`{{.Partner}}`,
		`Bearer {{.Vars.token}}`,
		`{"name": {{json .Vars.first_name}}, "from": {{json .From}}, "ch": {{.Channel}}, "fmt": {{urlquery .Format}}, "s": {{json .Subject}}}`,
		`plain text only`,
		``,
	}
	slow := []string{
		`{{urlquery "https://hooks.acme.example/sms?id=" .ID}}`,
		`{{printf "%s" .To}}`,
		`{{if .To}}x{{end}}`,
		`{{.Vars}}`,
		`{{.To | json}}`,
		`{{json .Vars}}`,
		`{{$x := .To}}{{$x}}`,
		`{{define "t"}}x{{end}}{{template "t"}}`,
	}
	datas := []httpData{
		{To: "+351912345678", Body: "Olá Ana, a sua encomenda 42 foi enviada.", ID: "dg1-7", Ref: "ord-1",
			Vars: map[string]string{"token": "t0k", "first_name": "Ana"}},
		{To: `"quoted" <b>&amp;</b>`, Body: "line1\nline2\ttab \u2028 \u2029 \x01 \x7f \\ é 漢字 🙂", Subject: "a+b c/d?e=f&g",
			ID: "k", Ref: "r&r", Partner: "acme corp", Channel: "sms", From: "x@y.z", Format: "html",
			Vars: map[string]string{"token": "a b+c", "first_name": "\xff\xfe invalid"}},
		{Vars: map[string]string{"token": "", "first_name": ""}},
	}
	for _, src := range fast {
		tm, err := parseTemplate("body", src)
		if err != nil {
			t.Fatal(err)
		}
		f, ok := compileFast(tm)
		if !ok {
			t.Fatalf("%q: not compiled", src)
		}
		for _, d := range datas {
			var want bytes.Buffer
			if err := tm.Execute(&want, d); err != nil {
				t.Fatal(err)
			}
			got, err := f.render(nil, &d)
			if err != nil {
				t.Fatalf("%q: %v", src, err)
			}
			if string(got) != want.String() {
				t.Errorf("%q:\n got %q\nwant %q", src, got, want.String())
			}
		}
	}
	for _, src := range slow {
		tm, err := parseTemplate("body", src)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := compileFast(tm); ok {
			t.Errorf("%q: compiled, but its shape is not one the fast renderer prints", src)
		}
	}
	// A variable the message does not have is an error, as with
	// missingkey=error.
	tm, _ := parseTemplate("h", `Bearer {{.Vars.token}}`)
	f, _ := compileFast(tm)
	d := httpData{Vars: map[string]string{}}
	if err := tm.Execute(&bytes.Buffer{}, d); err == nil {
		t.Fatal("text/template rendered a missing variable")
	}
	if _, err := f.render(nil, &d); err == nil {
		t.Fatal("fast template rendered a missing variable")
	}
}

// TestHTTPBodyTemplateStopsAtItsLimit: a channel's body template that
// loops over a message's text cannot build a request past the channel's
// limit (six times its body limit, for escaping, plus 64 KiB); the send
// fails for good before anything reaches the provider, by either path.
func TestHTTPBodyTemplateStopsAtItsLimit(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	for _, body := range []string{
		`{"t": "{{range 10000000}}{{$.Body}}{{end}}"}`,                             // text/template
		`{{.Body}}{{.Body}}{{.Body}}{{.Body}}{{.Body}}{{.Body}}{{.Body}}{{.Body}}`, // the fast path
	} {
		cc := &config.Channel{Name: "sms", Type: config.ChannelHTTP, URL: srv.URL, Body: body, MaxBodyBytes: 1000}
		d, err := newHTTPDriver("channel[0]", cc, srv.Client(), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Send(context.Background(), &store.Message{Recipient: "+351912345678", Body: strings.Repeat("x", 10_000), Key: "k"})
		var de *DeliveryError
		if !errors.As(err, &de) || !de.Permanent || !strings.Contains(err.Error(), "the rendered text is larger than 71536 bytes") {
			t.Errorf("%s: Send = %v, want a permanent error past 71536 bytes", body, err)
		}
	}
	if hits != 0 {
		t.Errorf("%d requests reached the provider", hits)
	}
}
