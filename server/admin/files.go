package admin

import (
	"net/http"

	"github.com/dropgate/dropgate/store"
)

// maxErrorsInList bounds the errors embedded per file in a listing; the
// single-file endpoint returns up to maxErrorsInFile.
const (
	maxErrorsInList = 20
	maxErrorsInFile = 10000
)

var fileStatuses = map[string]bool{store.FileReceived: true, store.FileRejected: true, store.FileQueued: true,
	store.FileHeld: true, store.FileReplaced: true, store.FileQuarantined: true}

func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request) error {
	partner, err := partnerScope(r)
	if err != nil {
		return err
	}
	f := store.FileFilter{Partner: partner, Status: r.URL.Query().Get("status")}
	if f.Status != "" && !fileStatuses[f.Status] {
		return errBadRequest("status must be one of received, rejected, queued, held, replaced, quarantined")
	}
	if f.Limit, f.BeforeID, err = pageParams(r); err != nil {
		return err
	}
	files, err := s.opts.Store.ListFiles(r.Context(), f)
	if err != nil {
		return err
	}
	if files == nil {
		files = []store.File{}
	}
	for i := range files {
		if files[i].Status == store.FileRejected || files[i].Status == store.FileQuarantined || files[i].RowsBad > 0 {
			if files[i].Errors, err = s.opts.Store.FileErrors(r.Context(), files[i].ID, maxErrorsInList); err != nil {
				return err
			}
		}
	}
	var last int64
	if len(files) > 0 {
		last = files[len(files)-1].ID
	}
	return writeJSON(w, http.StatusOK, withCursor(map[string]any{"files": files}, len(files), f.Limit, last))
}

func (s *Server) handleGetFile(w http.ResponseWriter, r *http.Request) error {
	f, err := s.fileWithErrors(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, f)
}

// fileWithErrors is the file named by the request's {id} with its first
// errors, when the caller may see it (another partner's is not found).
func (s *Server) fileWithErrors(r *http.Request) (store.File, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return store.File{}, err
	}
	f, err := s.opts.Store.File(r.Context(), id)
	if err != nil {
		return store.File{}, err
	}
	if p := principalFrom(r.Context()); !p.admin && p.partner != f.Partner {
		return store.File{}, errNotFound("file")
	}
	if f.Errors, err = s.opts.Store.FileErrors(r.Context(), id, maxErrorsInFile); err != nil {
		return store.File{}, err
	}
	return f, nil
}

func (s *Server) handleBans(w http.ResponseWriter, r *http.Request) error {
	bans := []Ban{}
	if s.opts.Bans != nil {
		bans = append(bans, s.opts.Bans()...)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"bans": bans})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.opts.Store.Ping(r.Context()); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: "database does not answer: " + err.Error()}
	}
	if why := s.notReady(); why != "" { // storage.go
		return &Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: why}
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
