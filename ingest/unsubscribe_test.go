package ingest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/unsubscribe"
)

const unsubText = `channel: email
subject: News for {{.first_name}}
---
Hi {{.first_name}},
Unsubscribe: {{unsubscribe_url}}`

const unsubHTML = `channel: email
subject: News
format: html
---
<p>Hi {{.first_name | title}},</p>
<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>`

func withLinks(t *testing.T, e *testEnv) *unsubscribe.Links {
	t.Helper()
	l, err := unsubscribe.New([]byte("0123456789abcdef0123456789abcdef"), "https://mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	e.in.unsubscribeURL = l.URL
	return l
}

// checkLink finds the link in body and checks it opens to partner and
// recipient.
func checkLink(t *testing.T, l *unsubscribe.Links, body, partner, recipient string) {
	t.Helper()
	i := strings.Index(body, "https://mail.example.com/u/")
	if i < 0 {
		t.Fatalf("no unsubscribe link in %q", body)
	}
	tok := body[i+len("https://mail.example.com/u/"):]
	if j := strings.IndexAny(tok, "\"\n <"); j >= 0 {
		tok = tok[:j]
	}
	p, r, err := l.Open(tok)
	if err != nil || p != partner || r != recipient {
		t.Fatalf("link in %q opens to %q, %q, %v; want %q, %q", body, p, r, err, partner, recipient)
	}
}

func TestUnsubscribeURLRendersPerRecipient(t *testing.T) {
	e := newTestEnv(t, nil)
	l := withLinks(t, e)
	e.template("acme", "news", unsubText)
	e.template("acme", "newshtml", unsubHTML)
	if r := e.readReport("acme", "news.tmpl.errors.txt") + e.readReport("acme", "newshtml.tmpl.errors.txt"); r != "" {
		t.Fatalf("templates refused: %s", r)
	}
	csv := []byte("email,first_name\nana@example.com,Ana\nbob@example.org,Bob\n")
	e.ingest("acme", "inbox/news/a.csv", csv)
	e.ingest("acme", "inbox/newshtml/b.csv", csv)
	for _, f := range e.files("acme") {
		if f.JobID == 0 {
			continue
		}
		msgs := e.messages(f.JobID)
		if len(msgs) != 2 {
			t.Fatalf("%s: %d messages, want 2", f.Name, len(msgs))
		}
		for _, m := range msgs {
			checkLink(t, l, m.Body, "acme", m.Recipient)
		}
		if msgs[0].Body == msgs[1].Body {
			t.Fatal("two recipients got the same link")
		}
	}
	// The API path renders it too.
	msgs, problems, err := e.in.Compose(context.Background(), "acme", APISend{Template: "news",
		Recipients: []APIRecipient{{To: "zoe@example.com", Vars: map[string]string{"first_name": "Zoe"}}}})
	if err != nil || len(problems) > 0 || len(msgs) != 1 {
		t.Fatalf("Compose: %v %v %d", problems, err, len(msgs))
	}
	checkLink(t, l, msgs[0].Body, "acme", "zoe@example.com")

	// And a list send, for each member.
	ctx := context.Background()
	list, err := e.st.EnsureList(ctx, "acme", "news")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.ContactInput{
		{Email: "ana@example.com", Attributes: map[string]any{"first_name": "Ana"}},
		{Email: "bob@example.org", Attributes: map[string]any{"first_name": "Bob"}},
	} {
		if _, _, err := e.st.PutContact(ctx, list, c); err != nil {
			t.Fatal(err)
		}
	}
	res, problems2, err := e.in.SendToList(ctx, "acme", ListSendRequest{List: "news", Template: "news"})
	if err != nil || len(problems2) > 0 || res.Queued != 2 {
		t.Fatalf("SendToList: %+v %v %v", res, problems2, err)
	}
	for _, m := range e.messages(res.JobID) {
		checkLink(t, l, m.Body, "acme", m.Recipient)
	}
}

func TestUnsubscribeURLRefusedWithoutPublicURL(t *testing.T) {
	e := newTestEnv(t, nil)
	e.template("acme", "news", unsubText)
	report := e.readReport("acme", "news.tmpl.errors.txt")
	if !strings.Contains(report, "public_url") || !strings.Contains(report, "line 5, column 16") {
		t.Fatalf("report = %q; want the public_url reason at line 5, column 16", report)
	}
	_, _, err := e.in.PutTemplate(context.Background(), "acme", "news", unsubHTML)
	var te *TemplateError
	if !errors.As(err, &te) || !strings.Contains(te.Msg, "public_url") || te.Line != 6 {
		t.Fatalf("PutTemplate = %v; want a template error at line 6 naming public_url", err)
	}
	// A version stored while public_url was set is refused at use once it
	// is gone: a row cannot be sent without its link.
	withLinks(t, e)
	e.template("acme", "news", unsubText)
	e.in.unsubscribeURL = nil
	e.in.templates = map[int64]*messageTemplate{}
	e.ingest("acme", "inbox/news/a.csv", []byte("email,first_name\nana@example.com,Ana\n"))
	if f := e.lastFile("acme"); f.Status != store.FileRejected {
		t.Fatalf("file = %+v, want rejected", f)
	}
	if r := e.readReport("acme", "a.csv.errors.csv"); !strings.Contains(r, "public_url") {
		t.Fatalf("errors report = %q; want the public_url reason", r)
	}
}

// BenchmarkRenderUnsubscribeURL is the per-message cost of the link on the
// fast path (a text template of variables and the link), against the same
// template with a variable in its place.
func BenchmarkRenderUnsubscribeURL(b *testing.B) {
	l, _ := unsubscribe.New([]byte("0123456789abcdef0123456789abcdef"), "https://mail.example.com")
	channels := []config.Channel{{Name: "email", Type: config.ChannelOutbox, Recipient: "email"}}
	vars := map[string]string{"first_name": "Ana", "link": "https://mail.example.com/u/x"}
	for _, c := range []struct{ name, src string }{
		{"variable", "channel: email\nsubject: News for {{.first_name}}\n---\nHi {{.first_name}},\nUnsubscribe: {{.link}}"},
		{"link", unsubText},
	} {
		b.Run(c.name, func(b *testing.B) {
			t, err := parseTemplate("news", c.src, channels)
			if err != nil {
				b.Fatal(err)
			}
			t.links = l.URL
			if t.fastBody == nil {
				b.Fatal("not on the fast path")
			}
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := t.renderFor(context.Background(), &buf, vars, "acme", "ana@example.com"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
