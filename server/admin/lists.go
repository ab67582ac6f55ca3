package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// maxContactsPerRequest bounds one POST /api/v1/lists/{list}/contacts;
// larger lists belong in a lists/<list>/ file.
const maxContactsPerRequest = 10_000

// listPartner is the partner a list route acts for: a partner key's own,
// or an admin token's ?partner=, which it must give.
func listPartner(r *http.Request) (string, error) {
	partner, err := partnerScope(r)
	if err != nil {
		return "", err
	}
	if partner == "" {
		return "", errBadRequest("lists belong to a partner: add ?partner=<name>")
	}
	return partner, nil
}

// visibleList returns the partner's list named by the path; another
// partner's list, like a missing one, is not found.
func (s *Server) visibleList(r *http.Request, partner string) (store.List, error) {
	name := r.PathValue("list")
	l, err := s.opts.Store.ListByName(r.Context(), partner, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.List{}, errNotFound("list " + strconv.Quote(name))
	}
	return l, err
}

// handleListLists answers every list of the partner (admin tokens without
// ?partner=: of every partner), with counts.
func (s *Server) handleListLists(w http.ResponseWriter, r *http.Request) error {
	partner, err := partnerScope(r)
	if err != nil {
		return err
	}
	lists, err := s.opts.Store.Lists(r.Context(), partner)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"lists": lists})
}

// createListRequest is the body of POST /api/v1/lists.
type createListRequest struct {
	Partner string `json:"partner"`
	Name    string `json:"name"`
}

// handleCreateList creates a list: 201, or 200 with the list when it
// exists already.
func (s *Server) handleCreateList(w http.ResponseWriter, r *http.Request) error {
	var req createListRequest
	if err := s.decodeJSON(w, r, &req, "list"); err != nil {
		return err
	}
	partner, err := sendingPartner(r, req.Partner)
	if err != nil {
		return err
	}
	if !s.knownPartner(partner) {
		return errUnknownPartner(partner, "partner "+strconv.Quote(partner)+" is not configured")
	}
	if !config.ValidListName(req.Name) {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request", Message: "name: not a list name",
			Details: []ingest.Problem{{Field: "name", Value: req.Name, Message: "a list name is 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit (it is also the folder lists/<name>/)"}}}
	}
	l, created, err := s.opts.Store.CreateList(r.Context(), partner, req.Name)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, l)
}

// knownPartner reports whether the config has the partner.
func (s *Server) knownPartner(name string) bool {
	if s.opts.Config == nil {
		return true
	}
	for _, p := range s.opts.Config.Partners {
		if p.Name == name {
			return true
		}
	}
	return false
}

// handleGetList answers one list with its members counted by status.
func (s *Server) handleGetList(w http.ResponseWriter, r *http.Request) error {
	partner, err := listPartner(r)
	if err != nil {
		return err
	}
	li, err := s.opts.Store.ListInfoByName(r.Context(), partner, r.PathValue("list"))
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("list " + strconv.Quote(r.PathValue("list")))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, li)
}

// handleListMembers pages through a list's members by contact id
// (?after=<next_after>), optionally of one ?status=.
func (s *Server) handleListMembers(w http.ResponseWriter, r *http.Request) error {
	partner, err := listPartner(r)
	if err != nil {
		return err
	}
	l, err := s.visibleList(r, partner)
	if err != nil {
		return err
	}
	limit, after, err := afterPage(r)
	if err != nil {
		return err
	}
	status := r.URL.Query().Get("status")
	if status != "" && status != store.Subscribed && status != store.Unsubscribed {
		return errBadRequest("status must be subscribed or unsubscribed")
	}
	members, err := s.opts.Store.ListMembers(r.Context(), l.ID, status, int64(after), limit)
	if err != nil {
		return err
	}
	resp := map[string]any{"contacts": members}
	if len(members) == limit && limit > 0 {
		resp["next_after"] = members[len(members)-1].ID
	}
	return writeJSON(w, http.StatusOK, resp)
}

// contactEntry is one contact in a request body.
type contactEntry struct {
	Email      string                     `json:"email"`
	Phone      string                     `json:"phone"`
	Ref        string                     `json:"ref"`
	Status     string                     `json:"status"`
	Attributes map[string]json.RawMessage `json:"attributes"`
}

// putContactsRequest is the body of POST /api/v1/lists/{list}/contacts.
type putContactsRequest struct {
	Partner  string         `json:"partner"`
	Contacts []contactEntry `json:"contacts"`
}

// handlePutContacts upserts up to maxContactsPerRequest contacts into a
// list, checked as the rows of a lists/<list>/ file: all or none, 422 with
// every problem by index.
func (s *Server) handlePutContacts(w http.ResponseWriter, r *http.Request) error {
	if s.opts.PutContacts == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "this server does not take contacts"}
	}
	var req putContactsRequest
	if err := s.decodeJSON(w, r, &req, "contacts"); err != nil {
		return err
	}
	partner, err := sendingPartner(r, req.Partner)
	if err != nil {
		return err
	}
	l, err := s.visibleList(r, partner)
	if err != nil {
		return err
	}
	if len(req.Contacts) == 0 {
		return errBadRequest(`give the contacts to store in "contacts": [{"email": ..., "attributes": {...}}]`)
	}
	if len(req.Contacts) > maxContactsPerRequest {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request",
			Message: fmt.Sprintf("at most %d contacts per request; drop a file in lists/%s/ for more", maxContactsPerRequest, l.Name)}
	}
	entries := make([]ingest.ContactEntry, len(req.Contacts))
	var problems []ingest.Problem
	for i, c := range req.Contacts {
		e := ingest.ContactEntry{Email: c.Email, Phone: c.Phone, Ref: c.Ref, Status: c.Status, Attributes: make(map[string]string, len(c.Attributes))}
		for name, raw := range c.Attributes {
			v, ok := attributeText(raw)
			if !ok {
				problems = append(problems, ingest.Problem{Field: fmt.Sprintf("contacts[%d].attributes.%s", i, name), Value: string(raw),
					Message: "an attribute is a string, a number, true/false or null (null leaves the stored value); not an object or a list"})
				continue
			}
			e.Attributes[name] = v
		}
		entries[i] = e
	}
	var counts store.ListCounts
	if len(problems) == 0 {
		counts, problems, err = s.opts.PutContacts(r.Context(), partner, l.Name, entries)
		if errors.Is(err, ingest.ErrUnknownPartner) {
			return errNotFound("list " + strconv.Quote(l.Name))
		}
		if err != nil {
			return err
		}
	}
	if len(problems) > 0 {
		return errProblems("nothing was stored", problems[0], problems)
	}
	s.logger.Info("contacts stored", "partner", partner, "list", l.Name, "inserted", counts.Inserted, "updated", counts.Updated, "unchanged", counts.Unchanged)
	return writeJSON(w, http.StatusOK, map[string]any{"inserted": counts.Inserted, "updated": counts.Updated, "unchanged": counts.Unchanged})
}

// attributeText is a JSON attribute value as a file cell would hold it:
// null and "" leave the stored value.
func attributeText(raw json.RawMessage) (string, bool) {
	t := bytes.TrimSpace(raw)
	switch {
	case len(t) == 0 || string(t) == "null":
		return "", true
	case t[0] == '"':
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return "", false
		}
		return s, true
	case t[0] == '{' || t[0] == '[':
		return "", false
	}
	return string(t), true // a number, true or false, as written
}

// handleRemoveMember takes the contact of ?email=, ?phone= or ?ref= off a
// list (the contact stays, with its other lists).
func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) error {
	partner, err := listPartner(r)
	if err != nil {
		return err
	}
	l, err := s.visibleList(r, partner)
	if err != nil {
		return err
	}
	c, err := s.contactOf(r, partner)
	if err != nil {
		return err
	}
	if err := s.opts.Store.RemoveMember(r.Context(), l.ID, c.ID); errors.Is(err, store.ErrNotFound) {
		return errNotFound("that contact in list " + strconv.Quote(l.Name))
	} else if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"deleted": 1})
}

// contactOf finds the partner's contact of ?email=, ?phone= or ?ref=,
// normalised as files' keys are.
func (s *Server) contactOf(r *http.Request, partner string) (store.Contact, error) {
	q := r.URL.Query()
	var column, value string
	for _, c := range []string{"email", "phone", "ref"} {
		if v := strings.TrimSpace(q.Get(c)); v != "" {
			if column != "" {
				return store.Contact{}, errBadRequest("give one of ?email=, ?phone= or ?ref=")
			}
			column, value = c, v
		}
	}
	if column == "" {
		return store.Contact{}, errBadRequest("give the contact's ?email=, ?phone= or ?ref=")
	}
	key := value
	if column == "email" {
		key = strings.ToLower(value)
	}
	if s.opts.ContactKey != nil {
		k, msg, err := s.opts.ContactKey(partner, column, value)
		if errors.Is(err, ingest.ErrUnknownPartner) {
			return store.Contact{}, errNotFound("contact")
		}
		if err != nil {
			return store.Contact{}, err
		}
		if msg != "" {
			return store.Contact{}, &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request", Message: column + ": " + msg,
				Details: []ingest.Problem{{Field: column, Value: value, Message: msg}}}
		}
		key = k
	}
	var email, phone, ref string
	switch column {
	case "email":
		email = key
	case "phone":
		phone = key
	default:
		ref = key
	}
	c, err := s.opts.Store.FindContact(r.Context(), partner, email, phone, ref)
	if errors.Is(err, store.ErrNotFound) {
		return store.Contact{}, errNotFound("contact with that " + column)
	}
	return c, err
}
