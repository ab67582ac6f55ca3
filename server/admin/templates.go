package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/dropgate/dropgate/ingest"
	"github.com/dropgate/dropgate/store"
)

// templateJSON is a template version as the API shows it, with the source
// file it was stored from.
type templateJSON struct {
	store.Template
	Source string `json:"source"`
}

// templatePartner is the partner a template route acts on: a partner key's
// own, or the ?partner= an admin must give.
func templatePartner(r *http.Request) (string, error) {
	partner, err := partnerScope(r)
	if err != nil {
		return "", err
	}
	if partner == "" {
		return "", errBadRequest("templates belong to a partner: add ?partner=<name>")
	}
	return partner, nil
}

func (s *Server) handleListTemplates(w http.ResponseWriter, r *http.Request) error {
	partner, err := partnerScope(r)
	if err != nil {
		return err
	}
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	afterPartner, afterName, _ := strings.Cut(r.URL.Query().Get("after"), "/")
	ts, err := s.opts.Store.TemplatePage(r.Context(), partner, afterPartner, afterName, limit)
	if err != nil {
		return err
	}
	resp := map[string]any{"templates": ts}
	if len(ts) == limit {
		resp["next_after"] = ts[len(ts)-1].Partner + "/" + ts[len(ts)-1].Name
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleTemplateVersions(w http.ResponseWriter, r *http.Request) error {
	partner, err := templatePartner(r)
	if err != nil {
		return err
	}
	limit, before, err := pageParams(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	vs, err := s.opts.Store.TemplateVersions(r.Context(), partner, name, int(before), limit)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("template " + strconv.Quote(name) + " of partner " + strconv.Quote(partner))
	}
	if err != nil {
		return err
	}
	resp := map[string]any{"partner": partner, "name": name, "versions": vs}
	if len(vs) == limit {
		resp["next_before"] = vs[len(vs)-1].Version
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleTemplateVersion(w http.ResponseWriter, r *http.Request) error {
	partner, err := templatePartner(r)
	if err != nil {
		return err
	}
	n, err := pathID(r, "version")
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	t, err := s.opts.Store.TemplateVersion(r.Context(), partner, name, int(n))
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("version " + strconv.FormatInt(n, 10) + " of template " + strconv.Quote(name))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, templateJSON{Template: t, Source: t.Source})
}

// handlePutTemplate stores a new version of a template from the request
// body: the template file itself (header, ---, body), or JSON
// {"source": "..."}. It is checked as a file dropped into templates/ is; a
// refusal is 422 with the line and column.
func (s *Server) handlePutTemplate(w http.ResponseWriter, r *http.Request) error {
	if s.opts.PutTemplate == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "this server does not store templates"}
	}
	partner, err := templatePartner(r)
	if err != nil {
		return err
	}
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	src := string(raw)
	if isJSON(r) {
		var req struct {
			Source string `json:"source"`
		}
		if err := json.Unmarshal(raw, &req); err != nil {
			return errBadRequest("the body is not {\"source\": \"...\"}: " + err.Error())
		}
		src = req.Source
	}
	t, created, err := s.opts.PutTemplate(r.Context(), partner, r.PathValue("name"), src)
	var te *ingest.TemplateError
	if errors.As(err, &te) {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_template", Message: te.Error(),
			Details: map[string]any{"line": te.Line, "column": te.Col, "message": te.Msg}}
	}
	if errors.Is(err, ingest.ErrUnknownPartner) {
		return errNotFound("partner " + strconv.Quote(partner))
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, templateJSON{Template: t, Source: t.Source})
}
