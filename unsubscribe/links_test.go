package unsubscribe

import (
	"crypto/cipher"
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

// BenchmarkURL is the cost a link adds to each email rendered or sent.
func BenchmarkURL(b *testing.B) {
	l, _ := New([]byte("0123456789abcdef0123456789abcdef"), "https://mail.example.com")
	b.ReportAllocs()
	for b.Loop() {
		l.URL("acme", "ana.maria.silva@example.com")
	}
}

// BenchmarkOpen is the check of a token on the public route.
func BenchmarkOpen(b *testing.B) {
	l, _ := New([]byte("0123456789abcdef0123456789abcdef"), "https://mail.example.com")
	tok := l.Token("acme", "ana.maria.silva@example.com")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := l.Open(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLongRecipientsRoundTrip(t *testing.T) {
	l := newLinks(t, "0123456789abcdef0123456789abcdef")
	for _, n := range []int{1, 200, 495, 496, 497, 600, 2000} {
		r := strings.Repeat("a", n) + "@example.com"
		p, got, err := l.Open(l.Token("acme", r))
		if n <= 900 && (err != nil || p != "acme" || got != r) {
			t.Fatalf("length %d: %q %v", n, p, err)
		}
	}
}

// The hand-written CTR is the standard library's.
func TestCTRMatchesCipherCTR(t *testing.T) {
	l := newLinks(t, "0123456789abcdef0123456789abcdef")
	iv := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}
	src := []byte(strings.Repeat("the quick brown fox ", 20))
	got, want := make([]byte, len(src)), make([]byte, len(src))
	l.ctr(got, src, iv)
	cipher.NewCTR(l.block, iv).XORKeyStream(want, src)
	if string(got) != string(want) {
		t.Fatal("ctr differs from cipher.NewCTR")
	}
}
