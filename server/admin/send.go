package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

// sendRequest is the body of POST /api/v1/messages. One recipient may be
// given inline (to, ref, vars) or many in recipients, not both.
type sendRequest struct {
	Partner    string          `json:"partner"`
	Template   string          `json:"template"`
	Channel    string          `json:"channel"`
	Subject    string          `json:"subject"`
	Body       string          `json:"body"`
	SendAt     string          `json:"send_at"`
	To         string          `json:"to"`
	Ref        string          `json:"ref"`
	Vars       *sendVars       `json:"vars"`
	Recipients []sendRecipient `json:"recipients"`
}

type sendRecipient struct {
	To   string    `json:"to"`
	Ref  string    `json:"ref"`
	Vars *sendVars `json:"vars"`
}

// sentMessage is one queued message in the answer.
type sentMessage struct {
	ID     int64  `json:"id"`
	To     string `json:"to"`
	Ref    string `json:"ref,omitempty"`
	Status string `json:"status"`
}

// handleSend queues transactional messages: checked and rendered exactly
// as a CSV row of the partner would be, stored before the answer, and sent
// ahead of bulk file jobs. An Idempotency-Key makes a retried request
// return the job it created the first time instead of sending twice.
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Compose == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "this server does not send messages"}
	}
	var req sendRequest
	if err := s.decodeJSON(w, r, &req, "send"); err != nil {
		return err
	}
	partner, err := sendingPartner(r, req.Partner)
	if err != nil {
		return err
	}
	if err := s.checkStorage(w, nil); err != nil { // storage.go: 507 while space is low
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return errBadRequest(fmt.Sprintf("Idempotency-Key is longer than %d characters", maxIdempotencyKey))
	}

	send, problems := req.toAPISend()
	var composed ingest.Composed
	if len(problems) == 0 {
		composed, problems, err = s.opts.Compose(r.Context(), partner, send)
		if errors.Is(err, ingest.ErrUnknownPartner) {
			return errUnknownPartner(partner, err.Error())
		}
		if err != nil {
			return err
		}
	}
	if len(problems) > 0 {
		return errProblems("nothing was queued", problems[0], problems)
	}

	// Stored with whatever other sends arrive meanwhile, in one commit,
	// and answered only after it.
	ar := store.APIRequest{Partner: partner, Key: key}
	if key != "" {
		// Only a key is ever compared with the request it came with; the
		// hash (the whole request encoded again) was 7% of a 1,000-recipient
		// send's time.
		ar.RequestHash = requestHash(partner, send)
	}
	msgs := composed.Msgs
	res := s.sends.create(r.Context(), store.APISend{Req: ar, Msgs: msgs, Templates: composed.Templates})
	job, ids, replay, err := res.Job, res.IDs, res.Replay, res.Err
	if errors.Is(err, store.ErrKeyReused) {
		return &Error{Status: http.StatusConflict, Code: "idempotency_key_reused", Message: "this Idempotency-Key was already used for a different request"}
	}
	if err != nil {
		return s.checkStorage(w, err)
	}
	if len(ids) != len(msgs) {
		return fmt.Errorf("job %d has %d messages, the request %d", job.ID, len(ids), len(msgs))
	}
	out := make([]sentMessage, len(msgs))
	for i, m := range msgs {
		out[i] = sentMessage{ID: ids[i], To: m.Recipient, Ref: m.Ref, Status: store.MsgQueued}
	}
	status := http.StatusAccepted
	if replay {
		// The messages may have moved on since; GET /api/v1/messages/{id}
		// tells where they are.
		for i := range out {
			out[i].Status = ""
		}
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	} else {
		s.logger.Info("API send queued", "partner", partner, "job", job.ID, "messages", len(ids))
		if s.opts.Nudge != nil {
			s.opts.Nudge()
		}
	}
	return writeSendAnswer(w, status, job.ID, out)
}

// writeSendAnswer writes {"job_id": ..., "messages": [...]} without
// reflection or indentation: for a 1,000-recipient send, encoding/json's
// indented answer was a tenth of the request's CPU.
func writeSendAnswer(w http.ResponseWriter, status int, jobID int64, out []sentMessage) error {
	b := make([]byte, 0, 64+len(out)*64)
	b = append(b, `{"job_id":`...)
	b = strconv.AppendInt(b, jobID, 10)
	b = append(b, `,"messages":[`...)
	for i, m := range out {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, m.ID, 10)
		b = append(b, `,"to":`...)
		b = appendJSONString(b, m.To)
		if m.Ref != "" {
			b = append(b, `,"ref":`...)
			b = appendJSONString(b, m.Ref)
		}
		b = append(b, `,"status":`...)
		b = appendJSONString(b, m.Status)
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	return writeJSONBytes(w, status, b)
}

// appendJSONString appends s as a JSON string: printable ASCII as it is,
// anything else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// requestHash identifies what a send asks for, whatever its JSON spelling
// (field order, inline or list recipient, "partner" given or implied by a
// partner key), so a retry matches and a different request does not.
func requestHash(partner string, send ingest.APISend) string {
	canonical, _ := json.Marshal(struct {
		Partner string
		Send    ingest.APISend
	}{partner, send})
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// sendingPartner is the partner a send acts as: a partner key sends only as
// itself; an admin names the partner.
func sendingPartner(r *http.Request, named string) (string, error) {
	p := principalFrom(r.Context())
	switch {
	case p.admin && named == "":
		return "", errBadRequest(`name the partner to send as: "partner": "<name>"`)
	case p.admin:
		return named, nil
	case named != "" && named != p.partner:
		return "", errForbidden("a partner key can only send as its own partner")
	}
	return p.partner, nil
}

// toAPISend turns the JSON shape into ingest's, with the inline recipient
// folded into the list and variables made text as a CSV cell would be.
func (req *sendRequest) toAPISend() (ingest.APISend, []ingest.Problem) {
	var problems []ingest.Problem
	send := ingest.APISend{Template: req.Template, Channel: req.Channel, Subject: req.Subject, Body: req.Body, SendAt: req.SendAt}
	recipients := req.Recipients
	if req.To != "" || req.Ref != "" || req.Vars != nil {
		if len(recipients) > 0 {
			problems = append(problems, ingest.Problem{Field: "to", Value: req.To, Message: "give one recipient in to/ref/vars, or many in recipients; not both"})
		}
		recipients = []sendRecipient{{To: req.To, Ref: req.Ref, Vars: req.Vars}}
	}
	if len(recipients) > 0 {
		send.Recipients = make([]ingest.APIRecipient, 0, len(recipients))
	}
	for i, rc := range recipients {
		var vars map[string]string
		if rc.Vars != nil {
			vars = rc.Vars.m
			for _, name := range rc.Vars.bad {
				problems = append(problems, ingest.Problem{Field: fmt.Sprintf("recipients[%d].vars.%s", i, name), Message: "a variable must be a string, number, boolean or null"})
			}
		}
		send.Recipients = append(send.Recipients, ingest.APIRecipient{To: rc.To, Ref: rc.Ref, Vars: vars})
	}
	return send, problems
}

// isJSON reports whether a request says its body is JSON (or says nothing).
func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return ct == "" || strings.HasPrefix(ct, "application/json")
}
