package unsubscribe

import (
	"encoding/base64"
	"strings"
	"testing"
)

func newLinks(t *testing.T, secret string) *Links {
	t.Helper()
	l, err := New([]byte(secret), "https://mail.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLinkOpensToWhatItNames(t *testing.T) {
	l := newLinks(t, "0123456789abcdef0123456789abcdef")
	u := l.URL("acme", "ana@example.com")
	tok, ok := strings.CutPrefix(u, "https://mail.example.com/u/")
	if !ok {
		t.Fatalf("URL %q does not start with the public URL and /u/", u)
	}
	if strings.Contains(u, "ana") || strings.Contains(u, "acme") {
		t.Fatalf("URL %q shows the partner or the address", u)
	}
	p, r, err := l.Open(tok)
	if err != nil || p != "acme" || r != "ana@example.com" {
		t.Fatalf("Open = %q, %q, %v", p, r, err)
	}
	if again := l.Token("acme", "ana@example.com"); again != tok {
		t.Fatalf("the same recipient got a different token: %q then %q", tok, again)
	}
}

func TestLinkRefusesForgedAndAlteredTokens(t *testing.T) {
	l := newLinks(t, "0123456789abcdef0123456789abcdef")
	other := newLinks(t, "another key, 32 bytes long......")
	tok := l.Token("acme", "+351912345678")
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	bad := []string{"", "x", strings.Repeat("A", 40), other.Token("acme", "+351912345678"), tok[:len(tok)-1], tok + "A", strings.Repeat("A", 2000)}
	for i := range raw {
		flipped := append([]byte(nil), raw...)
		flipped[i] ^= 1
		bad = append(bad, base64.RawURLEncoding.EncodeToString(flipped))
	}
	for _, b := range bad {
		if p, r, err := l.Open(b); err == nil {
			t.Errorf("Open(%q) accepted a forged token: %q, %q", b, p, r)
		}
	}
}

func TestCheckPublicURL(t *testing.T) {
	for _, ok := range []string{"https://mail.example.com", "https://x.example/dropgate/", "http://127.0.0.1:8080", "http://localhost:1"} {
		if err := CheckPublicURL(ok); err != nil {
			t.Errorf("CheckPublicURL(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "mail.example.com", "/u", "http://mail.example.com", "ftp://x.example", "https://x.example/?a=1", "https://u:p@x.example"} {
		if err := CheckPublicURL(bad); err == nil {
			t.Errorf("CheckPublicURL(%q) accepted it", bad)
		}
	}
}
