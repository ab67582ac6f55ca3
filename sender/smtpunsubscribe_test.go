package sender

import (
	"strings"
	"testing"
	"time"

	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/unsubscribe"
)

// With a public_url, every email carries the recipient's one-click link
// (RFC 8058) ahead of the channel's own mailto, and List-Unsubscribe-Post.
func TestSMTPSendsOneClickUnsubscribeHeaders(t *testing.T) {
	k := newSMTPSink(t)
	cfg := testConfig(t, smtpChannel(k))
	st := openStore(t, cfg)
	links, err := unsubscribe.New([]byte("0123456789abcdef0123456789abcdef"), "https://mail.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	j := queueMessages(t, st, "acme", store.SourceFile, store.PriorityBulk, []store.Message{
		{Channel: "email", Recipient: "ana@example.com", Subject: "News", Body: "Hello Ana\n"},
		{Channel: "email", Recipient: "rui@example.com", Subject: "News", Body: "Hello Rui\n"},
	})
	s := newSender(t, cfg, st, withTLS(k), func(o *Options) { o.UnsubscribeURL = links.URL })
	start(t, s)
	waitJob(t, st, j.ID, store.JobDone, 30*time.Second)

	mails := k.Mails()
	if len(mails) != 2 {
		t.Fatalf("sink got %d mails", len(mails))
	}
	for _, m := range mails {
		lu := header(m.Data, "List-Unsubscribe")
		url, rest, _ := strings.Cut(lu, ">, ")
		tok, ok := strings.CutPrefix(url, "<https://mail.acme.example/u/")
		if !ok || rest != "<mailto:unsubscribe@acme.example>" {
			t.Fatalf("List-Unsubscribe = %q; want the one-click link, then the channel's mailto", lu)
		}
		if p, r, err := links.Open(tok); err != nil || p != "acme" || r != m.To[0] {
			t.Errorf("link of the mail to %s opens to %q, %q, %v", m.To[0], p, r, err)
		}
		if got := header(m.Data, "List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
			t.Errorf("List-Unsubscribe-Post = %q", got)
		}
	}
}
