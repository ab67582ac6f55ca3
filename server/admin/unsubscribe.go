package admin

import (
	"errors"
	"html/template"
	"io"
	"net/http"
	"strings"

	"golang.org/x/time/rate"

	"github.com/dropgate/dropgate/ingest"
)

// The public unsubscribe pages (RFC 8058): GET /u/{token} shows a page
// that asks to confirm, POST /u/{token} unsubscribes. They take no admin
// token: the signed token is the permission, and it names one partner and
// one recipient. A GET never unsubscribes, because mail scanners and link
// previews open every link of a message.

// maxUnsubscribeBody bounds a POST's body: the one-click body is
// "List-Unsubscribe=One-Click", and the confirm form sends the same.
const maxUnsubscribeBody = 4 << 10

// unsubscribeRate and unsubscribeBurst bound the unsubscribes done per
// second by everybody together. A forged token is refused before any
// database work, so only valid links spend the budget; each is a write
// transaction, and a link replayed in a loop must not take the single
// writer from ingest and the sender.
const (
	unsubscribeRate  = 50
	unsubscribeBurst = 200
)

func newUnsubscribeLimiter() *rate.Limiter { return rate.NewLimiter(unsubscribeRate, unsubscribeBurst) }

// unsubscribePage is the whole page, styles inline: it is opened by
// recipients, from anywhere, and loads nothing else.
var unsubscribePage = template.Must(template.New("u").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
button{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:.3rem;background:#1f4e9c;color:#fff;cursor:pointer}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Form}}<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>{{end}}
</body></html>
`))

type unsubscribePageData struct {
	Title, Text string
	Form        bool
}

// writeUnsubscribePage answers with the page and headers that keep the
// token from leaking (no referrer) and the page from loading anything.
func writeUnsubscribePage(w http.ResponseWriter, status int, d unsubscribePageData) error {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	return unsubscribePage.Execute(w, d)
}

var notFoundPage = unsubscribePageData{Title: "Link not valid",
	Text: "This unsubscribe link is not valid. Copy the whole link from the message, or use the unsubscribe link of a newer message."}

// unsubscribeTarget opens the request's token: the partner (still
// configured) and the recipient it names, or ok false.
func (s *Server) unsubscribeTarget(r *http.Request) (partner, recipient string, ok bool) {
	if s.opts.Unsubscribe == nil {
		return "", "", false
	}
	partner, recipient, err := s.opts.Unsubscribe.Open(r.PathValue("token"))
	if err != nil {
		return "", "", false
	}
	if _, known := s.opts.Config.Partner(partner); !known {
		return "", "", false
	}
	return partner, recipient, true
}

// handleUnsubscribePage is GET /u/{token}: a page to confirm.
func (s *Server) handleUnsubscribePage(w http.ResponseWriter, r *http.Request) error {
	_, recipient, ok := s.unsubscribeTarget(r)
	if !ok {
		return writeUnsubscribePage(w, http.StatusNotFound, notFoundPage)
	}
	return writeUnsubscribePage(w, http.StatusOK, unsubscribePageData{Title: "Unsubscribe",
		Text: "Stop all messages to " + maskAddress(recipient) + " from this sender?", Form: true})
}

// handleUnsubscribe is POST /u/{token}: the one-click POST of a mail
// client, or the confirm page's form. The recipient leaves every list of
// the partner and is suppressed on every channel; a second POST changes
// nothing and answers the same.
func (s *Server) handleUnsubscribe(w http.ResponseWriter, r *http.Request) error {
	partner, recipient, ok := s.unsubscribeTarget(r)
	if !ok {
		return writeUnsubscribePage(w, http.StatusNotFound, notFoundPage)
	}
	if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxUnsubscribeBody)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return writeUnsubscribePage(w, http.StatusRequestEntityTooLarge, unsubscribePageData{Title: "Request too large",
				Text: "An unsubscribe request has no body beyond List-Unsubscribe=One-Click."})
		}
		return writeUnsubscribePage(w, http.StatusBadRequest, unsubscribePageData{Title: "Request cut off", Text: "Try again."})
	}
	if !s.unsubLimit.Allow() {
		w.Header().Set("Retry-After", "1")
		return writeUnsubscribePage(w, http.StatusTooManyRequests, unsubscribePageData{Title: "Busy",
			Text: "Too many requests right now; try again in a moment."})
	}
	got, err := s.opts.Store.UnsubscribeEverywhere(r.Context(), partner, ingest.SuppressionKey(recipient), "unsubscribed by the recipient (link)", "unsubscribe")
	if err != nil {
		return err
	}
	// The address stays out of the log: the suppression list has it.
	s.logger.Info("recipient unsubscribed by link", "partner", partner, "lists", got.Lists, "new_suppression", got.Suppressed)
	return writeUnsubscribePage(w, http.StatusOK, unsubscribePageData{Title: "Unsubscribed",
		Text: maskAddress(recipient) + " will get no more messages from this sender."})
}

// maskAddress shows enough of an address for its owner to recognise it,
// and little to anybody the link was forwarded to: "a***@example.com",
// "***5678".
func maskAddress(a string) string {
	if at := strings.LastIndexByte(a, '@'); at > 0 {
		return a[:1] + "***" + a[at:]
	}
	if len(a) > 4 {
		return "***" + a[len(a)-4:]
	}
	return "***"
}
