package admin

import (
	_ "embed"
	"net/http"
)

// statusPage is a self-contained page that asks for a token once (kept in the
// browser's session storage) and shows jobs with progress and rejected files
// through the same API curl uses. Serving it without data means the page
// itself never leaks anything to someone without a token.
//
//go:embed status.html
var statusPage []byte

func (s *Server) handleStatusPage(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
	_, err := w.Write(statusPage)
	return err
}
