package config

import (
	"slices"
	"strings"
	"testing"
)

const inboundBase = `
[admin]
public_url = "https://mail.example.com"

[[partner]]
name = "acme"
channels = ["sms", "mail"]

[[partner]]
name = "beta"
channels = ["sms"]

[[channel]]
name = "mail"
type = "outbox"
recipient = "email"

[[channel]]
name = "sms"
type = "http"
url = "https://sms.example/send"
`

func TestInboundAndPublicURLParse(t *testing.T) {
	cfg := parseValid(t, inboundBase+`
[channel.inbound]
secret = "${SMS_SECRET}"
from_path = "/from"
text_path = "/text"
keywords = ["STOP", "PARAR"]
`, map[string]string{"SMS_SECRET": "0123456789abcdef"})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ch, _ := cfg.Channel("sms")
	if ch.Inbound == nil || ch.Inbound.Secret != "0123456789abcdef" || ch.Inbound.FromPath != "/from" ||
		!slices.Equal(ch.Inbound.OptOutKeywords(), []string{"STOP", "PARAR"}) {
		t.Fatalf("inbound = %+v", ch.Inbound)
	}
	if got := cfg.InboundPartners(ch); !slices.Equal(got, []string{"acme", "beta"}) {
		t.Fatalf("InboundPartners = %v; want every partner that uses the channel", got)
	}
	if cfg.Admin.PublicURL != "https://mail.example.com" {
		t.Fatalf("public_url = %q", cfg.Admin.PublicURL)
	}
}

func TestInboundAndPublicURLErrorsNameTheField(t *testing.T) {
	src := strings.Replace(inboundBase, "https://mail.example.com", "http://mail.example.com", 1) + `
[channel.inbound]
secret = "short"
from_path = "from"
keywords = [" "]
partner = "nobody"
`
	cfg := parseValid(t, src, nil)
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"admin.public_url: \"http://mail.example.com\" must be https", "channel[1].inbound.secret",
		"channel[1].inbound.from_path: \"from\" is not a JSON pointer", "channel[1].inbound.text_path: is required",
		"channel[1].inbound.keywords[0]", "channel[1].inbound.partner: unknown partner \"nobody\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	cfg = parseValid(t, inboundBase+"\n[[channel]]\nname = \"x\"\ntype = \"outbox\"\n[channel.inbound]\nfrom_path = \"/a\"\ntext_path = \"/b\"\n", nil)
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "channel[2].inbound: only an http channel") {
		t.Fatalf("outbox inbound: %v", err)
	}
}
