package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// Error is an API error with the HTTP status and machine-readable code it is
// answered with.
type Error struct {
	Status  int
	Code    string
	Message string
	// Details, when set, is encoded as error.details: the list of
	// problems of a request that was refused as a whole.
	Details any
	// retryAfter, when set, is sent as Retry-After (seconds).
	retryAfter int
}

func (e *Error) Error() string { return e.Message }

func errBadRequest(msg string) error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: msg}
}
func errNotFound(what string) error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: what + " not found"}
}
func errUnauthorized() error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing or invalid bearer token: send Authorization: Bearer <token>"}
}
func errForbidden(msg string) error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: msg}
}

// errUnknownPartner refuses a request for a partner the config does not
// have (a key whose partner left the config); message is the answer's text.
func errUnknownPartner(partner, message string) error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request", Message: message,
		Details: []ingest.Problem{{Field: "partner", Value: partner, Message: "not a configured partner"}}}
}

// errProblems refuses a request as a whole for its problems (at least
// one, the first being first); outcome says what was not done, such as
// "nothing was queued".
func errProblems[P any](outcome string, first ingest.Problem, problems []P) error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request",
		Message: fmt.Sprintf("%s: %d problem(s), the first: %s: %s", outcome, len(problems), first.Field, first.Message),
		Details: problems}
}

// handlerFunc is an HTTP handler that returns its error instead of writing
// it, so that every error is encoded in one place.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// writeError turns any error into the JSON error shape
// {"error":{"code":"...","message":"..."}} with a matching status.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var apiErr *Error
	switch {
	case errors.As(err, &apiErr):
	case errors.Is(err, store.ErrNotFound):
		apiErr = &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, store.ErrConflict):
		apiErr = &Error{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}
	default:
		logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		apiErr = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the server log has the details"}
	}
	if apiErr.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dropgate"`)
	}
	if apiErr.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(apiErr.retryAfter))
	}
	if r.ContentLength != 0 {
		// The body may be unread (refused before it was read, or read
		// only in part): closing the connection keeps net/http from
		// reading the rest before it sends this answer, so a client
		// trickling a body learns at once that it was refused.
		w.Header().Set("Connection", "close")
	}
	body := map[string]any{"code": apiErr.Code, "message": apiErr.Message}
	if apiErr.Details != nil {
		body["details"] = apiErr.Details
	}
	writeJSON(w, apiErr.Status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
