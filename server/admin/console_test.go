package admin

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/store"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so each step's answer can be checked.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func page(t *testing.T, c *http.Client, method, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// The console signs in through a form into a signed, HttpOnly,
// SameSite=Strict session cookie that is not the token; forms need the
// session's CSRF token; a partner key sees only its partner; sign-out ends
// the session.
func TestConsoleSessionsCSRFAndPartnerScope(t *testing.T) {
	f := newFixture(t)
	own := f.job(t, "acme", 2)
	other := f.job(t, "beta", 1)
	c := browser(t)

	if resp, _ := page(t, c, "GET", f.srv.URL+"/jobs", nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := page(t, c, "POST", f.srv.URL+"/login", url.Values{"token": {"not-a-token-at-all"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not an admin token") {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/login", strings.NewReader("token="+partnerToken))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in posted from another site: %v %v", resp.StatusCode, err)
	}

	resp, _ := page(t, c, "POST", f.srv.URL+"/login", url.Values{"token": {partnerToken}, "next": {"/jobs"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/jobs" {
		t.Fatalf("sign in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure || strings.Contains(cookie.Value, partnerToken) {
		t.Fatalf("session cookie = %+v", cookie)
	}

	_, body := page(t, c, "GET", f.srv.URL+"/jobs", nil)
	if !strings.Contains(body, "/jobs/"+strconv.FormatInt(own.ID, 10)) || strings.Contains(body, ">beta<") {
		t.Fatalf("a partner's job list shows other partners or not its own:\n%s", body)
	}
	if resp, _ := page(t, c, "GET", f.srv.URL+"/jobs/"+strconv.FormatInt(other.ID, 10), nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another partner's job: %d", resp.StatusCode)
	}

	jobURL := f.srv.URL + "/jobs/" + strconv.FormatInt(own.ID, 10)
	_, body = page(t, c, "GET", jobURL, nil)
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on the job page")
	}
	if resp, _ := page(t, c, "POST", jobURL+"/cancel", url.Values{"csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cancel without the form token: %d", resp.StatusCode)
	}
	if resp, _ := page(t, c, "POST", jobURL+"/cancel", url.Values{"csrf": {m[1]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d", resp.StatusCode)
	}
	if j, _ := f.store.Job(t.Context(), own.ID); j.Status != store.JobCancelled {
		t.Fatalf("job after cancel: %s", j.Status)
	}

	// A cookie whose signature does not match is no session.
	u, _ := url.Parse(f.srv.URL)
	forged := browser(t)
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: cookie.Value[:len(cookie.Value)-2] + "xx"}})
	if resp, _ := page(t, forged, "GET", f.srv.URL+"/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("forged cookie: %d", resp.StatusCode)
	}

	if resp, _ := page(t, c, "POST", f.srv.URL+"/logout", url.Values{"csrf": {m[1]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	// The old cookie is dead even if a browser kept it.
	again := browser(t)
	again.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: cookie.Value}})
	if resp, _ := page(t, again, "GET", f.srv.URL+"/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d", resp.StatusCode)
	}
}

// An admin sees the overview with its chart and every partner's jobs.
func TestConsoleOverviewForAdmin(t *testing.T) {
	f := newFixture(t)
	f.job(t, "beta", 1)
	c := browser(t)
	page(t, c, "POST", f.srv.URL+"/login", url.Values{"token": {adminToken}})
	resp, body := page(t, c, "GET", f.srv.URL+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<svg class=\"chart\"") || !strings.Contains(body, ">beta<") {
		t.Fatalf("overview: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP = %q", csp)
	}
}
