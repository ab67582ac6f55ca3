package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// readBody reads a request's body within the configured size and time.
// It is called only after the request was authenticated, so an anonymous
// client can hold a connection for no longer than the header timeout.
// Oversized is 413; a body that does not arrive in time is 408; a client
// that hangs up part-way gets 400 (and will not read it), never 413.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	maxBody := s.opts.Config.Admin.MaxBody
	// The deadline is per request, from now: the server-wide ReadTimeout
	// is only a backstop for handlers that read no body.
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(s.now().Add(s.opts.Config.Admin.BodyTimeout.D())); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, fmt.Errorf("cannot set the body deadline: %w", err)
	}
	// A body of known length is read into a buffer of its size: grown from
	// empty, as io.ReadAll does, an events batch's body was allocated about
	// twice over, a tenth of the garbage of an event (workflow/BENCHMARKS.md).
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= maxBody {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		rc.SetReadDeadline(time.Time{})
		return buf.Bytes(), nil
	}
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooBig):
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Message: fmt.Sprintf("the request body is over %d bytes (admin.max_body); drop a file for large sends", maxBody)}
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return nil, &Error{Status: http.StatusRequestTimeout, Code: "body_timeout",
			Message: fmt.Sprintf("the request body did not arrive within %s (admin.body_timeout)", s.opts.Config.Admin.BodyTimeout.D())}
	default:
		s.logger.Debug("client went away while sending its body", "path", r.URL.Path, "err", err)
		return nil, &Error{Status: http.StatusBadRequest, Code: "incomplete_body", Message: "the request body ended early: " + err.Error()}
	}
}

// partnerLimits holds one token bucket per partner key, so one partner's
// script cannot take the API from the others. Admin tokens are not
// limited: they are the operator's.
type partnerLimits struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	by    map[string]*rate.Limiter
}

func newPartnerLimits(perSecond float64, burst int) *partnerLimits {
	if perSecond <= 0 {
		return nil
	}
	return &partnerLimits{rate: rate.Limit(perSecond), burst: burst, by: map[string]*rate.Limiter{}}
}

// allow takes a token for partner at now; when the bucket is empty it
// returns how long until one is there.
func (l *partnerLimits) allow(partner string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	lim, ok := l.by[partner]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.by[partner] = lim
	}
	l.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func errRateLimited(wait time.Duration) error {
	secs := int(math.Ceil(wait.Seconds()))
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", retryAfter: secs,
		Message: "too many requests for this partner key (admin.partner_rate); retry after " + strconv.Itoa(secs) + " s"}
}

// decodeJSON reads a JSON request body (within the body limits) strictly
// into v: unknown fields are errors; what names the request for the
// client's message.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any, what string) error {
	if !isJSON(r) {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "send the request as Content-Type: application/json"}
	}
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errBadRequest("the body is not a valid " + what + " request: " + err.Error())
	}
	return nil
}
