package admin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dropgate/dropgate/store"
)

// The status console: server-rendered pages for people, from templates
// embedded in the binary (no CDN, no script: pages that change refresh
// themselves with a meta refresh). A browser signs in with the admin token
// or a partner key through a form; it then holds a cookie with a random
// session id signed with a key kept in the database, never the token.

//go:embed console
var consoleFS embed.FS

const (
	sessionCookie   = "dropgate_session"
	sessionLifetime = 12 * time.Hour
)

// console holds the parsed pages and the cookie key.
type console struct {
	pages map[string]*template.Template
	key   []byte
}

var consoleFuncs = template.FuncMap{
	"statuses":     func() []string { return []string{"ingesting", "queued", "sending", "paused", "done", "cancelled"} },
	"sources":      func() []string { return []string{"file", "api", "list", "workflow"} },
	"filestatuses": func() []string { return []string{"received", "rejected", "queued"} },
	"actions":      func() []string { return []string{"pause", "resume", "cancel", "retry"} },
	"pct": func(done, total int) int {
		if total <= 0 {
			return 100
		}
		return done * 100 / total
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode())
	},
}

func newConsole(key []byte) (*console, error) {
	base, err := template.New("layout.html").Funcs(consoleFuncs).ParseFS(consoleFS, "console/layout.html")
	if err != nil {
		return nil, err
	}
	pages, err := fs.Glob(consoleFS, "console/*.html")
	if err != nil {
		return nil, err
	}
	c := &console{pages: map[string]*template.Template{}, key: key}
	for _, p := range pages {
		name := strings.TrimPrefix(p, "console/")
		if name == "layout.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(consoleFS, p)
		if err != nil {
			return nil, fmt.Errorf("console page %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return c, nil
}

// pageData is what every page gets: who is signed in, the session's form
// token, and the page's own data.
type pageData struct {
	Title   string
	Admin   bool
	Partner string
	CSRF    string
	Refresh int
	Data    any
}

// render writes a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, d pageData) error {
	t := s.console.pages[page]
	if t == nil {
		return fmt.Errorf("no console page %s", page)
	}
	if sess, ok := r.Context().Value(sessionKey{}).(store.ConsoleSession); ok {
		d.Admin, d.Partner, d.CSRF = sess.Admin, sess.Partner, sess.CSRF
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	return t.ExecuteTemplate(w, "layout.html", d)
}

type sessionKey struct{}

// sign returns the cookie value for a session id.
func (c *console) sign(id []byte) string {
	m := hmac.New(sha256.New, c.key)
	m.Write(id)
	return base64.RawURLEncoding.EncodeToString(id) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify checks a cookie value's signature and returns the session id's
// hash as stored.
func (c *console) verify(v string) (string, bool) {
	a, b, ok := strings.Cut(v, ".")
	if !ok {
		return "", false
	}
	id, err1 := base64.RawURLEncoding.DecodeString(a)
	mac, err2 := base64.RawURLEncoding.DecodeString(b)
	if err1 != nil || err2 != nil || len(id) != 32 {
		return "", false
	}
	m := hmac.New(sha256.New, c.key)
	m.Write(id)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return "", false
	}
	sum := sha256.Sum256(id)
	return hex.EncodeToString(sum[:]), true
}

// signedIn wraps a console page: without a valid session it sends the
// browser to the sign-in form; a POST must carry the session's form token.
func (s *Server) signedIn(h handlerFunc) http.Handler {
	return s.wrapPage(func(w http.ResponseWriter, r *http.Request) error {
		c, err := r.Cookie(sessionCookie)
		var sess store.ConsoleSession
		if err == nil {
			if hash, ok := s.console.verify(c.Value); ok {
				sess, err = s.opts.Store.ConsoleSessionByHash(r.Context(), hash, s.now())
			} else {
				err = store.ErrNotFound
			}
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, http.ErrNoCookie) {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return nil
		}
		if err != nil {
			return err
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
				return &Error{Status: http.StatusForbidden, Code: "csrf", Message: "this form has expired or did not come from this console; go back, reload the page and try again"}
			}
		}
		ctx := context.WithValue(r.Context(), sessionKey{}, sess)
		ctx = context.WithValue(ctx, principalKey{}, principal{admin: sess.Admin, partner: sess.Partner})
		return h(w, r.WithContext(ctx))
	})
}

// wrapPage is wrap for pages: errors are shown as a page, not JSON.
func (s *Server) wrapPage(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var apiErr *Error
		status, msg := http.StatusInternalServerError, "internal error; the server log has the details"
		switch {
		case errors.As(err, &apiErr):
			status, msg = apiErr.Status, apiErr.Message
		case errors.Is(err, store.ErrNotFound):
			status, msg = http.StatusNotFound, "not found"
		case errors.Is(err, store.ErrConflict):
			status, msg = http.StatusConflict, err.Error()
		default:
			s.logger.Error("console page failed", "path", r.URL.Path, "err", err)
		}
		if err := s.render(w, r, status, "error.html", pageData{Title: http.StatusText(status), Data: msg}); err != nil {
			s.logger.Warn("cannot render error page", "err", err)
		}
	})
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, http.StatusOK, "login.html", pageData{Title: "Sign in", Data: map[string]string{"Next": safeNext(r.URL.Query().Get("next"))}})
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

// sameOrigin refuses a form posted from another site (the sign-in form
// has no session yet, so no form token: this is its CSRF check).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err == nil && u.Host == r.Host
	}
	return true
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	if !sameOrigin(r) {
		return &Error{Status: http.StatusForbidden, Code: "csrf", Message: "sign in from this console's own page"}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	next := safeNext(r.PostFormValue("next"))
	p, ok := lookupToken(s.tokens, r.PostFormValue("token"))
	if ok && !p.admin {
		if allowed, _ := s.limits.allow(p.partner, s.now()); !allowed {
			ok = false
		}
	}
	if !ok {
		return s.render(w, r, http.StatusUnauthorized, "login.html", pageData{Title: "Sign in",
			Data: map[string]string{"Next": next, "Error": "That is not an admin token or a partner's API key."}})
	}
	id := make([]byte, 32)
	rand.Read(id)
	csrf := make([]byte, 24)
	rand.Read(csrf)
	sum := sha256.Sum256(id)
	if err := s.opts.Store.CreateConsoleSession(r.Context(), store.ConsoleSession{IDHash: hex.EncodeToString(sum[:]), Admin: p.admin,
		Partner: p.partner, CSRF: base64.RawURLEncoding.EncodeToString(csrf), ExpiresAt: s.now().Add(sessionLifetime)}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.console.sign(id), Path: "/", HttpOnly: true,
		Secure: s.tlsOn || r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionLifetime.Seconds())})
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	sess := r.Context().Value(sessionKey{}).(store.ConsoleSession)
	if err := s.opts.Store.DeleteConsoleSession(r.Context(), sess.IDHash); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.tlsOn || r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func (s *Server) handleStyle(w http.ResponseWriter, r *http.Request) error {
	b, err := consoleFS.ReadFile("console/style.css")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, err = w.Write(b)
	return err
}
