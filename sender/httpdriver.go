package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

var (
	_ Driver = (*httpDriver)(nil)
	_ Prober = (*httpDriver)(nil)
)

// Content types the http driver knows how to default a body for.
const (
	contentJSON = "application/json"
	contentForm = "application/x-www-form-urlencoded"
)

// Default bodies when a channel sets none.
const (
	defaultJSONBody = `{"to": {{json .To}}, "body": {{json .Body}}, "subject": {{json .Subject}}, "id": {{json .ID}}, "ref": {{json .Ref}}}`
	defaultFormBody = `to={{urlquery .To}}&body={{urlquery .Body}}&id={{urlquery .ID}}&ref={{urlquery .Ref}}`
)

// maxResponse bounds how much of a provider's answer is read.
const maxResponse = 64 << 10

// httpDriver posts each message to a provider's HTTP API, with a body and
// headers rendered from the channel's templates.
type httpDriver struct {
	client *http.Client
	// rt is client's transport when the driver made the client itself and
	// the URL carries no user info: requests go to it directly (see do).
	rt          http.RoundTripper
	method      string
	url         string
	contentType string
	// contentTypeValue is contentType as a header value, shared by every
	// request (net/http only reads it).
	contentTypeValue []string
	body             *template.Template
	bodyFast         *fastTemplate // body without reflection, when its shape allows
	headers          []httpHeader
	username         string
	password         string
	success          []int // empty: any 2xx
	idPath           string
	maxBody          int // the largest request body rendered (requestLimit)
	// bodySize is the largest body rendered so far, up to maxBodyHint:
	// the capacity the next one starts with.
	bodySize atomic.Int64
}

type httpHeader struct {
	name string
	tmpl *template.Template
	fast *fastTemplate // nil: tmpl's shape needs text/template
}

// httpData is what an http channel's body and header templates see.
type httpData struct {
	To      string
	Body    string
	Subject string
	ID      string // the idempotency key
	Ref     string
	Vars    map[string]string
	Partner string
	Channel string
	From    string
	Format  string
}

func newHTTPDriver(field string, cc *config.Channel, client *http.Client) (*httpDriver, error) {
	u, err := url.Parse(cc.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s.url: %q is not an http(s) URL", field, cc.URL)
	}
	d := &httpDriver{client: client, method: strings.ToUpper(cc.Method), url: cc.URL, contentType: cc.ContentType,
		username: cc.Username, password: cc.Password, success: cc.SuccessStatus, idPath: cc.IDPath, maxBody: requestLimit(cc)}
	if d.method == "" {
		d.method = http.MethodPost
	}
	if d.contentType == "" {
		d.contentType = contentJSON
	}
	d.contentTypeValue = []string{d.contentType}
	if d.idPath != "" && !strings.HasPrefix(d.idPath, "/") {
		return nil, fmt.Errorf("%s.id_path: %q is not a JSON pointer (it starts with /)", field, d.idPath)
	}
	for i, st := range d.success {
		if st < 100 || st > 599 {
			return nil, fmt.Errorf("%s.success_status[%d]: %d is not an HTTP status", field, i, st)
		}
	}
	body := cc.Body
	if body == "" {
		body = defaultJSONBody
		if strings.HasPrefix(d.contentType, contentForm) {
			body = defaultFormBody
		}
	}
	if d.body, err = parseTemplate("body", body); err != nil {
		return nil, fmt.Errorf("%s.body: %w", field, err)
	}
	d.bodyFast, _ = compileFast(d.body)
	names := make([]string, 0, len(cc.Headers))
	for k := range cc.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t, err := parseTemplate(k, cc.Headers[k])
		if err != nil {
			return nil, fmt.Errorf("%s.headers.%s: %w", field, k, err)
		}
		fast, _ := compileFast(t)
		d.headers = append(d.headers, httpHeader{name: k, tmpl: t, fast: fast})
	}
	if d.client == nil {
		conc := max(cc.Concurrency, 4)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = conc
		d.client = &http.Client{Transport: tr}
		if u.User == nil { // user info in the URL is basic auth that http.Client adds
			d.rt = tr
		}
	}
	return d, nil
}

// parseTemplate parses a body or header template. A variable the row does
// not have is an error at send time, not an empty string sent to a provider.
func parseTemplate(name, text string) (*template.Template, error) {
	return config.ParseProviderTemplate(name, text)
}

// maxHeaderBytes bounds one rendered header value: servers refuse request
// headers past 8 KiB or so (nginx, Apache and Go's server alike).
const maxHeaderBytes = 8 << 10

// requestLimit bounds the rendered request body of a channel: the
// message's body, as large as the channel lets a template render it,
// escaped (JSON escapes a byte as at most 6), plus room for the rest of
// the provider's body. The body template is the administrator's, not a
// partner's, but it can still loop ({{range}}) over a message's text.
func requestLimit(cc *config.Channel) int {
	return 6*cc.BodyLimit() + 64<<10
}

// render appends the output of a body or header template to b, at most
// limit bytes of it: by fast when its shape allowed one, else by
// text/template, stopped as soon as it writes past the limit.
func render(t *template.Template, fast *fastTemplate, b []byte, data *httpData, limit int) ([]byte, error) {
	start := len(b)
	if fast != nil {
		out, err := fast.render(b, data)
		if err == nil && len(out)-start > limit {
			return out[:start], errTooLarge(limit)
		}
		return out, err
	}
	w := &cappedBuffer{b: b, max: start + limit}
	err := t.Execute(w, *data)
	return w.b, err
}

// cappedBuffer is a bytes buffer that refuses to grow past max.
type cappedBuffer struct {
	b   []byte
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if len(c.b)+len(p) > c.max {
		return 0, errTooLarge(c.max)
	}
	c.b = append(c.b, p...)
	return len(p), nil
}

func errTooLarge(limit int) error {
	return fmt.Errorf("the rendered text is larger than %d bytes", limit)
}

// Send renders the request, posts it, and reads the provider's id from the
// answer. The idempotency key goes in the Idempotency-Key header.
func (d *httpDriver) Send(ctx context.Context, m *store.Message) (string, error) {
	data := httpData{To: m.Recipient, Body: m.Body, Subject: m.Subject, ID: m.Key, Ref: m.Ref, Vars: m.Vars,
		Partner: m.Partner, Channel: m.Channel, From: m.Sender, Format: m.Format}
	if data.Vars == nil {
		data.Vars = noVars
	}
	// Rendered into a buffer as large as the largest body so far: grown
	// from nil it took four or five allocations a message.
	body, err := render(d.body, d.bodyFast, make([]byte, 0, d.bodySize.Load()), &data, d.maxBody)
	if err != nil {
		return "", permanent(fmt.Errorf("cannot render the request body: %w", err))
	}
	if n := int64(len(body)); n > d.bodySize.Load() && n <= maxBodyHint {
		d.bodySize.Store(n)
	}
	req, err := http.NewRequestWithContext(ctx, d.method, d.url, bytes.NewReader(body))
	if err != nil {
		return "", permanent(fmt.Errorf("cannot build the request: %w", err))
	}
	// Set directly, not through Header.Set: the names are canonical and
	// the fixed values' slices are shared (net/http only reads them), a few
	// allocations less per message.
	req.Header["Content-Type"] = d.contentTypeValue
	req.Header["Idempotency-Key"] = []string{m.Key}
	req.Header["User-Agent"] = userAgentValue
	var hv []byte
	for _, h := range d.headers {
		if hv, err = render(h.tmpl, h.fast, hv[:0], &data, maxHeaderBytes); err != nil {
			return "", permanent(fmt.Errorf("cannot render header %s: %w", h.name, err))
		}
		req.Header.Set(h.name, string(hv))
	}
	if d.username != "" || d.password != "" {
		req.SetBasicAuth(d.username, d.password)
	}
	resp, err := d.do(req)
	if err != nil {
		return "", transient(fmt.Errorf("%s %s: %w", d.method, d.url, err))
	}
	defer resp.Body.Close()
	buf := answerBuffers.Get().(*[]byte)
	defer answerBuffers.Put(buf)
	raw, err := readAnswer((*buf)[:0], resp.Body)
	*buf = raw[:0]
	if err != nil {
		return "", transient(fmt.Errorf("cannot read the answer of %s: %w", d.url, err))
	}
	if !d.accepted(resp.StatusCode) {
		return "", d.statusError(resp, raw)
	}
	return d.providerID(raw), nil
}

// do sends req. Through the transport directly when the driver made its
// own client: http.Client.Do clones every request's headers for redirects
// that a provider's API does not send, and sets up their bookkeeping,
// eight allocations a message (sender/BENCHMARKS.md, session 8). A
// redirect is still followed as http.Client follows it: the request goes
// out again through the client, under the same idempotency key (a 3xx
// answer means the provider did not take it). Errors read as the client's.
func (d *httpDriver) do(req *http.Request) (*http.Response, error) {
	if d.rt == nil {
		return d.client.Do(req)
	}
	resp, err := d.rt.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: req.Method[:1] + strings.ToLower(req.Method[1:]), URL: d.url, Err: err}
	}
	if !redirected(resp) {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	again := req.Clone(req.Context())
	if again.Body, err = req.GetBody(); err != nil {
		return nil, err
	}
	return d.client.Do(again)
}

// redirected says whether http.Client would follow resp.
func redirected(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return resp.Header.Get("Location") != ""
	}
	return false
}

// maxBodyHint bounds the capacity a body starts with.
const maxBodyHint = 16 << 10

// noVars is the variables of a message without any: templates only read
// them, so one empty map serves every such message.
var noVars = map[string]string{}

// userAgentValue is the User-Agent header of every request.
var userAgentValue = []string{"dropgate"}

// answerBuffers hold providers' answers while Send reads them; nothing read
// from an answer keeps a reference to it (the id and error texts are
// copies).
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// readAnswer appends at most maxResponse bytes of r to b.
func readAnswer(b []byte, r io.Reader) ([]byte, error) {
	for len(b) < maxResponse {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(cap(b), maxResponse-len(b)))
		}
		n, err := r.Read(b[len(b):min(cap(b), maxResponse)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

func (d *httpDriver) accepted(status int) bool {
	if len(d.success) == 0 {
		return status >= 200 && status < 300
	}
	return slices.Contains(d.success, status)
}

// statusError classifies a refused request: 429 and 5xx (and 408) are worth
// retrying, the rest is the provider saying no, kept with its words. A 429,
// or a 503 with Retry-After, is the provider throttling the channel; any
// other 5xx is about this request and retries it alone. Retry-After is the
// earliest the message is tried again.
func (d *httpDriver) statusError(resp *http.Response, raw []byte) error {
	err := fmt.Errorf("HTTP %d: %s", resp.StatusCode, responseText(raw, resp.Status))
	after := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return &DeliveryError{Throttle: true, RetryAfter: after, Err: err}
	case resp.StatusCode == http.StatusServiceUnavailable && after > 0:
		return &DeliveryError{Throttle: true, RetryAfter: after, Err: err}
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout:
		return &DeliveryError{RetryAfter: after, Err: err}
	}
	return permanent(err)
}

// providerID reads the id at the channel's id_path from a JSON answer; an
// answer without one still means the message was accepted.
func (d *httpDriver) providerID(raw []byte) string {
	if d.idPath == "" {
		return ""
	}
	return providerIDAt(raw, d.idPath)
}

// providerIDAt reads the scalar at ptr in a JSON answer; "" when the answer
// is not JSON or has none there. Only the value found is decoded.
func providerIDAt(raw []byte, ptr string) string {
	if !json.Valid(raw) {
		return ""
	}
	vraw, ok := jsonPointerRaw(raw, ptr)
	if !ok {
		return ""
	}
	if len(vraw) > 1 && vraw[0] == '"' && bytes.IndexByte(vraw, '\\') < 0 && utf8.Valid(vraw) {
		return string(vraw[1 : len(vraw)-1]) // the usual id: a plain string
	}
	var v any
	if err := json.Unmarshal(vraw, &v); err != nil {
		return ""
	}
	id, _ := jsonScalar(v)
	return id
}

// Probe checks that the provider's host accepts TCP connections.
func (d *httpDriver) Probe(ctx context.Context) error {
	u, _ := url.Parse(d.url)
	host := u.Host
	if u.Port() == "" {
		port := "443"
		if u.Scheme == "http" {
			port = "80"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", host, err)
	}
	return c.Close()
}

// responseText is a provider's answer trimmed to one readable line.
func responseText(raw []byte, status string) string {
	s := strings.Join(strings.Fields(string(raw)), " ")
	if s == "" {
		return status
	}
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 when
// absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
