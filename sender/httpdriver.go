package sender

import (
	"bytes"
	"context"
	"crypto/tls"
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

	// direct, when set, is the path requests take instead of rt
	// (httpconn.go); the fields below are its fixed parts of a request.
	direct *httpDirect
	// head is the request line, Host and User-Agent.
	head []byte
	// sendLength: Content-Length even for an empty body (POST, PUT,
	// PATCH), as net/http writes it.
	sendLength bool
	writeType  bool   // Content-Type, unless a header template sets it
	writeKey   bool   // Idempotency-Key, unless a header template sets it
	authLine   []byte // Authorization for username and password, or nil
	closeEach  bool   // a Connection header template: no keep-alive
}

type httpHeader struct {
	name string
	tmpl *template.Template
	fast *fastTemplate // nil: tmpl's shape needs text/template
	// canon is name as net/http writes it; skip: rendered but not
	// written by the direct path, as net/http leaves it out too (Host,
	// Content-Length and such, a later template of the same name, an
	// Authorization that username and password replace).
	canon string
	skip  bool
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

// newHTTPDriver builds the driver of the http channel cc. client, when
// set (tests), takes every request; otherwise the driver makes its own
// transport, with tlsConf (tests: their server's roots) when set.
func newHTTPDriver(field string, cc *config.Channel, client *http.Client, tlsConf *tls.Config) (*httpDriver, error) {
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
		tr.Proxy = httpProxy
		if tlsConf != nil {
			tr.TLSClientConfig = tlsConf.Clone()
		}
		d.client = &http.Client{Transport: tr}
		if u.User == nil { // user info in the URL is basic auth that http.Client adds
			d.rt = tr
			d.setDirect(u, tlsConf)
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
// answer. The idempotency key goes in the Idempotency-Key header. A
// channel's workers send through sessions of their own (session); a Send
// outside one takes a spare session.
func (d *httpDriver) Send(ctx context.Context, m *store.Message) (string, error) {
	if d.direct == nil {
		return d.send(ctx, m, nil)
	}
	s := d.direct.session(d)
	defer d.direct.putSession(s)
	return d.send(ctx, m, s)
}

// session gives a worker a connection of its own to the provider, closed
// by the func returned when the worker stops (channel.work).
func (d *httpDriver) session() (Driver, func()) {
	if d.direct == nil {
		return d, func() {}
	}
	s := &httpSession{d: d}
	return s, s.drop
}

// Close closes the channel's connections.
func (d *httpDriver) Close() error {
	if d.direct != nil {
		d.direct.close()
	}
	if d.rt != nil {
		d.client.CloseIdleConnections()
	}
	return nil
}

// send delivers m through the direct path on s, or through the client
// when s is nil.
func (d *httpDriver) send(ctx context.Context, m *store.Message, s *httpSession) (string, error) {
	// The templates' data escapes to the heap: a session keeps one.
	var data *httpData
	if s != nil {
		data = &s.data
		defer func() { *data = httpData{} }() // no message kept past its send
	} else {
		data = new(httpData)
	}
	*data = httpData{To: m.Recipient, Body: m.Body, Subject: m.Subject, ID: m.Key, Ref: m.Ref, Vars: m.Vars,
		Partner: m.Partner, Channel: m.Channel, From: m.Sender, Format: m.Format}
	if data.Vars == nil {
		data.Vars = noVars
	}
	// Rendered into a buffer as large as the largest body so far: grown
	// from nil it took four or five allocations a message. A session
	// reuses its own.
	var buf []byte
	if s != nil {
		buf = s.body[:0]
	} else {
		buf = make([]byte, 0, d.bodySize.Load())
	}
	body, err := render(d.body, d.bodyFast, buf, data, d.maxBody)
	if err != nil {
		return "", permanent(fmt.Errorf("cannot render the request body: %w", err))
	}
	var resp *http.Response
	var raw []byte
	if s != nil {
		if cap(body) <= maxBodyHint {
			s.body = body[:0]
		}
		resp, raw, err = d.post(ctx, s, body, data, m.Key)
	} else {
		if n := int64(len(body)); n > d.bodySize.Load() && n <= maxBodyHint {
			d.bodySize.Store(n)
		}
		buf := answerBuffers.Get().(*[]byte)
		defer answerBuffers.Put(buf)
		resp, raw, err = d.postClient(ctx, body, data, m.Key, buf, false)
	}
	if err != nil {
		return "", err
	}
	if !d.accepted(resp.StatusCode) {
		return "", d.statusError(resp, raw)
	}
	return d.providerID(raw), nil
}

// post sends the request on the session's connection and reads the
// answer into the session's buffer. A redirect goes out again through the
// client, as do follows it.
func (d *httpDriver) post(ctx context.Context, s *httpSession, body []byte, data *httpData, key string) (*http.Response, []byte, error) {
	w := append(s.wbuf[:0], d.head...)
	if d.sendLength || len(body) > 0 {
		w = append(w, "Content-Length: "...)
		w = strconv.AppendInt(w, int64(len(body)), 10)
		w = append(w, "\r\n"...)
	}
	if d.writeType {
		w = append(w, "Content-Type: "...)
		w = append(w, d.contentType...)
		w = append(w, "\r\n"...)
	}
	if d.writeKey {
		w = append(w, "Idempotency-Key: "...)
		w = append(w, key...)
		w = append(w, "\r\n"...)
	}
	var err error
	for _, h := range d.headers {
		if s.hv, err = render(h.tmpl, h.fast, s.hv[:0], data, maxHeaderBytes); err != nil {
			return nil, nil, permanent(fmt.Errorf("cannot render header %s: %w", h.name, err))
		}
		if !validHeaderValue(s.hv) {
			return nil, nil, d.requestError(invalidHeaderValue(h.canon))
		}
		v := bytes.Trim(s.hv, " \t")
		if h.skip || (len(v) == 0 && h.canon == "User-Agent") {
			continue
		}
		w = append(w, h.canon...)
		w = append(w, ": "...)
		w = append(w, v...)
		w = append(w, "\r\n"...)
	}
	w = append(w, d.authLine...)
	w = append(w, "\r\n"...)
	w = append(w, body...)
	if cap(w) <= 2*maxBodyHint {
		s.wbuf = w[:0]
	}
	resp, err := s.roundTrip(ctx, w)
	if err != nil {
		return nil, nil, d.requestError(err)
	}
	raw, err := s.readBody(ctx, resp)
	if err != nil {
		return nil, nil, transient(fmt.Errorf("cannot read the answer of %s: %w", d.url, err))
	}
	if redirected(resp) {
		// The client's transport may read the body after Do returned: a
		// copy, not the session's buffer.
		return d.postClient(ctx, bytes.Clone(body), data, key, &s.answer, true)
	}
	return resp, raw, nil
}

// requestError is err of a request that got no answer, worded as
// http.Client words it (Post "url": ...).
func (d *httpDriver) requestError(err error) error {
	err = &url.Error{Op: d.method[:1] + strings.ToLower(d.method[1:]), URL: d.url, Err: err}
	return transient(fmt.Errorf("%s %s: %w", d.method, d.url, err))
}

// postClient sends the request through the client (the transport, unless
// redirected), and reads the answer into buf.
func (d *httpDriver) postClient(ctx context.Context, body []byte, data *httpData, key string, buf *[]byte, redirected bool) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, d.method, d.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, permanent(fmt.Errorf("cannot build the request: %w", err))
	}
	// Set directly, not through Header.Set: the names are canonical and
	// the fixed values' slices are shared (net/http only reads them), a few
	// allocations less per message.
	req.Header["Content-Type"] = d.contentTypeValue
	req.Header["Idempotency-Key"] = []string{key}
	req.Header["User-Agent"] = userAgentValue
	var hv []byte
	for _, h := range d.headers {
		if hv, err = render(h.tmpl, h.fast, hv[:0], data, maxHeaderBytes); err != nil {
			return nil, nil, permanent(fmt.Errorf("cannot render header %s: %w", h.name, err))
		}
		req.Header.Set(h.name, string(hv))
	}
	if d.username != "" || d.password != "" {
		req.SetBasicAuth(d.username, d.password)
	}
	var resp *http.Response
	if redirected {
		resp, err = d.client.Do(req)
	} else {
		resp, err = d.do(req)
	}
	if err != nil {
		return nil, nil, transient(fmt.Errorf("%s %s: %w", d.method, d.url, err))
	}
	defer resp.Body.Close()
	raw, err := readAnswer((*buf)[:0], resp.Body)
	*buf = raw[:0]
	if err != nil {
		return nil, nil, transient(fmt.Errorf("cannot read the answer of %s: %w", d.url, err))
	}
	return resp, raw, nil
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
	b, _, err := readAnswerEOF(b, r)
	return b, err
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
