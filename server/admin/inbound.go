package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/sender"
)

// inboundAnswer is the answer to a provider's inbound message.
type inboundAnswer struct {
	// OptOut is true when the text was an opt-out keyword.
	OptOut bool `json:"opt_out"`
	// Partners are the partners the sender opted out of.
	Partners []string `json:"partners,omitempty"`
}

// handleInbound is POST /api/v1/inbound/{channel}: a message the
// channel's provider received (an SMS reply). It is authenticated with the
// channel's inbound secret, not an API token: the provider holds it. A
// text that is an opt-out keyword unsubscribes and suppresses the sender's
// number for the channel's partners (config.InboundPartners); any other
// text is accepted and ignored, so the provider does not retry it.
func (s *Server) handleInbound(w http.ResponseWriter, r *http.Request) error {
	ch, ok := s.opts.Config.Channel(r.PathValue("channel"))
	if !ok || ch.Inbound == nil {
		return errNotFound("inbound route of channel " + r.PathValue("channel"))
	}
	if !inboundAuthorized(r, ch.Inbound.Secret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="dropgate inbound"`)
		return &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
			Message: "missing or wrong inbound secret: send Authorization: Bearer <secret> (or Basic with the secret as password)"}
	}
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	read := func(field, ptr string) (string, error) {
		v, err := inboundField(r, raw, ptr)
		if err != nil {
			return "", &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request", Message: field + ": " + err.Error()}
		}
		return v, nil
	}
	from, err := read("from_path", ch.Inbound.FromPath)
	if err != nil {
		return err
	}
	text, err := read("text_path", ch.Inbound.TextPath)
	if err != nil {
		return err
	}
	keyword, ok := optOutKeyword(ch.Inbound, text)
	if !ok {
		s.logger.Debug("inbound message is not an opt-out; ignored", "channel", ch.Name)
		return writeJSON(w, http.StatusOK, inboundAnswer{})
	}
	if s.opts.CheckSuppressions == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "this server does not take suppressions"}
	}
	ans := inboundAnswer{OptOut: true}
	for _, partner := range s.opts.Config.InboundPartners(ch) {
		// The number is normalised with each partner's region, as its
		// recipient files are.
		sups, problems, err := s.opts.CheckSuppressions(partner, []ingest.SuppressEntry{{Phone: from}})
		if errors.Is(err, ingest.ErrUnknownPartner) {
			continue
		}
		if err != nil {
			return err
		}
		if len(problems) > 0 || len(sups) != 1 {
			// A sender id that is no phone number (a short code, a name)
			// cannot be messaged by the partner anyway.
			s.logger.Warn("inbound opt-out from a sender that is not a phone number; ignored", "channel", ch.Name, "partner", partner)
			continue
		}
		got, err := s.opts.Store.UnsubscribeEverywhere(r.Context(), partner, sups[0].Recipient, "replied "+keyword, "inbound:"+ch.Name)
		if err != nil {
			return err
		}
		s.logger.Info("inbound opt-out", "channel", ch.Name, "partner", partner, "lists", got.Lists, "new_suppression", got.Suppressed)
		ans.Partners = append(ans.Partners, partner)
	}
	return writeJSON(w, http.StatusOK, ans)
}

// inboundField reads what the pointer ptr names in the request's body:
// in a JSON body, as id_path reads a provider's answer; in a form body
// (application/x-www-form-urlencoded, as Twilio posts), the field that a
// one-token pointer names ("/From" is the field From).
func inboundField(r *http.Request, body []byte, ptr string) (string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return sender.JSONString(body, ptr)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", fmt.Errorf("the form body does not parse: %w", err)
	}
	name := strings.TrimPrefix(ptr, "/")
	if strings.Contains(name, "/") {
		return "", fmt.Errorf("JSON pointer %q: a form body has only top-level fields", ptr)
	}
	name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
	if !form.Has(name) {
		return "", fmt.Errorf("the form has no field %q", name)
	}
	return form.Get(name), nil
}

// optOutKeyword reports whether text, trimmed, is one of the channel's
// opt-out keywords in any case, and which.
func optOutKeyword(in *config.Inbound, text string) (string, bool) {
	text = strings.TrimSpace(text)
	i := slices.IndexFunc(in.OptOutKeywords(), func(k string) bool { return strings.EqualFold(strings.TrimSpace(k), text) })
	if i < 0 {
		return "", false
	}
	return strings.ToUpper(text), true
}

// inboundAuthorized checks the request's secret in constant time: a
// bearer token, or the password of Basic auth (providers such as Twilio
// put credentials in the webhook URL and send them that way). The digests
// are compared, so the time does not depend on the secret's length either.
func inboundAuthorized(r *http.Request, secret string) bool {
	if secret == "" {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		if _, pw, basic := r.BasicAuth(); basic {
			got, ok = pw, true
		}
	}
	if !ok {
		return false
	}
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
