package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// maxSuppressionsPerRequest bounds one POST /api/v1/suppressions; longer
// lists belong in a suppress/ file.
const maxSuppressionsPerRequest = 10_000

// suppressionEntry is one suppression in a request body.
type suppressionEntry struct {
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Channel string `json:"channel"`
	Reason  string `json:"reason"`
}

// suppressRequest is the body of POST /api/v1/suppressions: one entry
// inline, or many in suppressions.
type suppressRequest struct {
	Partner string `json:"partner"`
	suppressionEntry
	Suppressions []suppressionEntry `json:"suppressions"`
}

// handleListSuppressions pages through suppressions by id
// (?after=<next_after>), optionally of one recipient and/or channel.
func (s *Server) handleListSuppressions(w http.ResponseWriter, r *http.Request) error {
	partner, err := partnerScope(r)
	if err != nil {
		return err
	}
	limit, after, err := afterPage(r)
	if err != nil {
		return err
	}
	recipient, err := s.suppressionRecipient(r, partner)
	if err != nil {
		return err
	}
	sups, err := s.opts.Store.SuppressionPage(r.Context(), partner, recipient, r.URL.Query().Get("channel"), int64(after), limit)
	if err != nil {
		return err
	}
	resp := map[string]any{"suppressions": sups}
	if len(sups) == limit && limit > 0 {
		resp["next_after"] = sups[len(sups)-1].ID
	}
	return writeJSON(w, http.StatusOK, resp)
}

// suppressionRecipient is ?recipient= in the stored form: a phone number
// normalised with the partner's region, an address lower-cased.
func (s *Server) suppressionRecipient(r *http.Request, partner string) (string, error) {
	v := strings.TrimSpace(r.URL.Query().Get("recipient"))
	if v == "" || partner == "" || s.opts.CheckSuppressions == nil {
		return ingest.SuppressionKey(v), nil
	}
	e := ingest.SuppressEntry{Phone: v}
	if strings.Contains(v, "@") {
		e = ingest.SuppressEntry{Email: v}
	}
	sups, problems, err := s.opts.CheckSuppressions(partner, []ingest.SuppressEntry{e})
	if errors.Is(err, ingest.ErrUnknownPartner) {
		return "", errNotFound("partner " + strconv.Quote(partner))
	}
	if err != nil {
		return "", err
	}
	if len(problems) > 0 {
		return "", &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request", Message: "recipient: " + problems[0].Message}
	}
	return sups[0].Recipient, nil
}

// handleAddSuppressions stores suppressions checked as suppress/ rows are:
// all or none, 422 with every problem by index.
func (s *Server) handleAddSuppressions(w http.ResponseWriter, r *http.Request) error {
	if s.opts.CheckSuppressions == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "this server does not take suppressions"}
	}
	var req suppressRequest
	if err := s.decodeJSON(w, r, &req, "suppression"); err != nil {
		return err
	}
	partner, err := sendingPartner(r, req.Partner)
	if err != nil {
		return err
	}
	entries := req.Suppressions
	if req.suppressionEntry != (suppressionEntry{}) {
		if len(entries) > 0 {
			return errBadRequest("give one suppression inline (email/phone, channel, reason) or many in suppressions; not both")
		}
		entries = []suppressionEntry{req.suppressionEntry}
	}
	if len(entries) == 0 {
		return errBadRequest(`give an email or phone to suppress, or a list in "suppressions"`)
	}
	if len(entries) > maxSuppressionsPerRequest {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request",
			Message: fmt.Sprintf("at most %d suppressions per request; drop a file in suppress/ for more", maxSuppressionsPerRequest)}
	}
	in := make([]ingest.SuppressEntry, len(entries))
	for i, e := range entries {
		in[i] = ingest.SuppressEntry{Email: e.Email, Phone: e.Phone, Channel: e.Channel, Reason: e.Reason}
	}
	sups, problems, err := s.opts.CheckSuppressions(partner, in)
	if errors.Is(err, ingest.ErrUnknownPartner) {
		return errUnknownPartner(partner, err.Error())
	}
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return errProblems("nothing was suppressed", problems[0], problems)
	}
	stored, err := s.opts.Store.AddSuppressions(r.Context(), sups)
	if err != nil {
		return err
	}
	added := 0
	for _, x := range stored {
		if x.Added {
			added++
		}
	}
	s.logger.Info("suppressions added", "partner", partner, "added", added, "already_suppressed", len(stored)-added)
	return writeJSON(w, http.StatusCreated, map[string]any{"added": added, "already_suppressed": len(stored) - added, "suppressions": stored})
}

// handleDeleteSuppression removes one suppression; another partner's is
// not found.
func (s *Server) handleDeleteSuppression(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errNotFound("suppression " + strconv.Quote(r.PathValue("id")))
	}
	p := principalFrom(r.Context())
	partner := p.partner
	if p.admin {
		partner = ""
	}
	if err := s.opts.Store.DeleteSuppression(r.Context(), partner, id); errors.Is(err, store.ErrNotFound) {
		return errNotFound("suppression " + strconv.FormatInt(id, 10))
	} else if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"deleted": 1})
}

// handleDeleteSuppressionsOf removes a partner's suppressions of
// ?recipient= (on ?channel=, or on every channel).
func (s *Server) handleDeleteSuppressionsOf(w http.ResponseWriter, r *http.Request) error {
	partner, err := partnerScope(r)
	if err != nil {
		return err
	}
	if partner == "" {
		return errBadRequest("suppressions belong to a partner: add ?partner=<name>")
	}
	if strings.TrimSpace(r.URL.Query().Get("recipient")) == "" {
		return errBadRequest("add ?recipient=<email or phone> (or DELETE /api/v1/suppressions/{id})")
	}
	recipient, err := s.suppressionRecipient(r, partner)
	if err != nil {
		return err
	}
	n, err := s.opts.Store.DeleteSuppressionsOf(r.Context(), partner, recipient, r.URL.Query().Get("channel"))
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound("suppression of " + strconv.Quote(recipient))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"deleted": n})
}
