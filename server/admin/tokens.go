package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/dropgate/dropgate/config"
)

// principal is who a request acts as: an admin (sees everything) or one
// partner (sees and acts only as itself).
type principal struct {
	admin   bool
	partner string
}

type principalKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// tokenEntry is a configured token kept only as its SHA-256, so literal and
// "sha256:<hex>" tokens compare the same way, in constant time.
type tokenEntry struct {
	sum [32]byte
	who principal
}

func newTokenEntries(cfg *config.Config) []tokenEntry {
	var out []tokenEntry
	add := func(tok string, who principal) {
		if tok == "" {
			return
		}
		var e tokenEntry
		if h, ok := strings.CutPrefix(tok, "sha256:"); ok {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != 32 {
				return // Validate has already refused it
			}
			copy(e.sum[:], b)
		} else {
			e.sum = sha256.Sum256([]byte(tok))
		}
		e.who = who
		out = append(out, e)
	}
	for _, t := range cfg.Admin.Tokens {
		add(t, principal{admin: true})
	}
	for _, p := range cfg.Partners {
		add(p.APIKey, principal{partner: p.Name})
	}
	return out
}

// authenticate finds the principal of a bearer token. Every entry is
// compared, so the time taken does not depend on which one matched.
func authenticate(entries []tokenEntry, r *http.Request) (principal, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return principal{}, false
	}
	return lookupToken(entries, tok)
}

// lookupToken finds the principal of a token, in constant time over the
// entries.
func lookupToken(entries []tokenEntry, tok string) (principal, bool) {
	if strings.TrimSpace(tok) == "" {
		return principal{}, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	var found principal
	matched := 0
	for _, e := range entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			found = e.who
			matched = 1
		}
	}
	return found, matched == 1
}
