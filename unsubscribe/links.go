// Package unsubscribe makes and checks the signed links of one-click
// unsubscribe (RFC 8058): the List-Unsubscribe header of an email and the
// {{unsubscribe_url}} of a template point at <public_url>/u/<token>.
//
// A token names the partner and the recipient, so the admin server needs
// no table of issued links (a row per message would cost every ingest a
// write). It is sealed, not only signed: the recipient's address is not
// readable in the URL, which mail gateways, proxies and browser histories
// log. The construction is SIV-like: tag = HMAC-SHA256(macKey, payload)
// truncated to 128 bits, then payload encrypted with AES-CTR under encKey
// with the tag as IV. The same recipient always gets the same link (which
// a partner may rely on to deduplicate clicks), a changed byte fails the
// tag, and without the key a link can be neither made nor guessed.
package unsubscribe

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net"
	"net/url"
	"strings"
	"sync"
)

// PathPrefix is the admin server's public path of the links: the token
// follows it.
const PathPrefix = "/u/"

// tagSize is the length of the authentication tag: 128 bits.
const tagSize = 16

// maxToken bounds the tokens Open looks at: a partner name (64) and an
// email address (254) sealed and encoded are far below it.
const maxToken = 1024

// ErrBadToken is a token that was not made with this key: forged, altered
// or cut.
var ErrBadToken = errors.New("the unsubscribe link is not valid")

// Links makes and opens unsubscribe links for one public base URL and key.
type Links struct {
	base  string // public_url without a trailing slash
	block cipher.Block
	// macs holds keyed HMAC states: keying one costs two SHA-256 blocks
	// and four allocations, a quarter of a link's cost at ingest.
	macs sync.Pool
}

// New returns the links of base (the [admin] public_url, checked with
// CheckPublicURL) signed with secret, the content of the key file in
// <data_dir>/secrets. The MAC and cipher keys are derived from it apart,
// so neither use weakens the other.
func New(secret []byte, base string) (*Links, error) {
	if len(secret) < 16 {
		return nil, errors.New("the unsubscribe key is shorter than 16 bytes")
	}
	if err := CheckPublicURL(base); err != nil {
		return nil, err
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("dropgate unsubscribe " + label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("enc"))
	if err != nil {
		return nil, fmt.Errorf("cannot set up the unsubscribe cipher: %w", err)
	}
	l := &Links{base: strings.TrimRight(base, "/"), block: block}
	macKey := derive("mac")
	l.macs.New = func() any { return hmac.New(sha256.New, macKey) }
	return l, nil
}

// CheckPublicURL checks a public_url: an absolute https URL without query
// or fragment; http only for a loopback host (tests, a local trial),
// because a mail client follows the link over the internet and RFC 8058
// asks for HTTPS.
func CheckPublicURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URL such as https://mail.example.com", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not have a query, a fragment or a user name", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q must be https (mail clients open it over the internet); http is allowed only for localhost", s)
	}
	return fmt.Errorf("%q must be an https URL", s)
}

// tag returns the authentication tag of payload, appended to dst.
func (l *Links) tag(dst, payload []byte) []byte {
	m := l.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(payload)
	var sum [sha256.Size]byte
	dst = append(dst, m.Sum(sum[:0])[:tagSize]...)
	l.macs.Put(m)
	return dst
}

// ctr encrypts (or decrypts) src into dst in AES-CTR mode from iv, as
// cipher.NewCTR does; written out because NewCTR allocates a 512-byte
// stream buffer per call, and a link is made per message.
func (l *Links) ctr(dst, src, iv []byte) {
	var ctr, ks [aes.BlockSize]byte
	copy(ctr[:], iv)
	for i := 0; i < len(src); i += aes.BlockSize {
		l.block.Encrypt(ks[:], ctr[:])
		for j := 0; j < aes.BlockSize && i+j < len(src); j++ {
			dst[i+j] = src[i+j] ^ ks[j]
		}
		for k := aes.BlockSize - 1; k >= 0; k-- {
			if ctr[k]++; ctr[k] != 0 {
				break
			}
		}
	}
}

// seal returns the token's bytes: tag, then the encrypted payload.
func (l *Links) seal(partner, recipient string) []byte {
	n := tagSize + len(partner) + 1 + len(recipient)
	raw := make([]byte, 2*n) // the sealed token, then the payload it is sealed from
	payload := append(append(append(raw[n:n], partner...), 0), recipient...)
	l.tag(raw[:0], payload)
	l.ctr(raw[tagSize:n], payload, raw[:tagSize])
	return raw[:n]
}

// Token seals partner and recipient into a token.
func (l *Links) Token(partner, recipient string) string {
	return base64.RawURLEncoding.EncodeToString(l.seal(partner, recipient))
}

// URL returns the link that unsubscribes recipient from partner.
func (l *Links) URL(partner, recipient string) string {
	raw := l.seal(partner, recipient)
	enc := base64.RawURLEncoding
	u := make([]byte, len(l.base)+len(PathPrefix)+enc.EncodedLen(len(raw)))
	i := copy(u, l.base)
	i += copy(u[i:], PathPrefix)
	enc.Encode(u[i:], raw)
	return string(u)
}

// Open checks a token in constant time and returns what it names, or
// ErrBadToken.
func (l *Links) Open(token string) (partner, recipient string, err error) {
	if len(token) > maxToken {
		return "", "", ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < tagSize+2 {
		return "", "", ErrBadToken
	}
	tag, sealed := raw[:tagSize], raw[tagSize:]
	payload := make([]byte, len(sealed))
	l.ctr(payload, sealed, tag)
	var want [tagSize]byte
	if !hmac.Equal(l.tag(want[:0], payload), tag) {
		return "", "", ErrBadToken
	}
	p, r, ok := strings.Cut(string(payload), "\x00")
	if !ok || p == "" || r == "" {
		return "", "", ErrBadToken
	}
	return p, r, nil
}
