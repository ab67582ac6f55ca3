package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"
)

// ListMember is one subscribed member of a list as a list send reads it:
// the contact's keys and its attributes as stored (a JSON object).
type ListMember struct {
	ContactID         int64
	Email, Phone, Ref string
	Attributes        []byte
}

// MemberRange returns the lowest and highest contact id of a list's
// members (0, 0 for an empty list): a list send splits that span into
// ranges its workers read in parallel. Two subqueries: SQLite finds a
// lone min() or max() at one end of the primary key, but both in one
// SELECT read every member of the list.
func (s *Store) MemberRange(ctx context.Context, listID int64) (lo, hi int64, err error) {
	var l, h sql.NullInt64
	var rl, rh sql.NullInt64
	err = s.reader.QueryRowContext(ctx, `SELECT (SELECT min(contact_id) FROM list_members WHERE list_id = ?1),
		(SELECT max(contact_id) FROM list_members WHERE list_id = ?1),
		(SELECT min(lo) FROM list_member_ranges WHERE list_id = ?1),
		(SELECT max(hi) FROM list_member_ranges WHERE list_id = ?1)`, listID).Scan(&l, &h, &rl, &rh)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read members of list %d: %w", listID, err)
	}
	// Members stored as rows and as member ranges (lists_ranges.go).
	if rl.Valid && (!l.Valid || rl.Int64 < l.Int64) {
		l = rl
	}
	if rh.Valid && (!h.Valid || rh.Int64 > h.Int64) {
		h = rh
	}
	return l.Int64, h.Int64, nil
}

// MemberKeys are the contact keys a read of list members returns, as a
// set of bits.
type MemberKeys uint8

// The keys a read of list members may return.
const (
	MemberEmail MemberKeys = 1 << iota
	MemberPhone
	MemberRef
)

// SubscribedMembers returns the subscribed members of the list whose
// contact id is in [lo, hi], in contact order, appended to buf[:0] (whose
// slots' attribute arrays are reused). A send reads a list range by range,
// so no list is ever held in memory whole, and each range is its own short
// read: a long one would hold the WAL from being checkpointed while the
// send's messages are written. Only the keys asked for are read (the
// others are left empty): each column read costs about as much as a
// contact's decoding, and a send needs its channel's recipient and the
// ref, a dry run often none.
//
// It reads through the driver's own interfaces: database/sql's Scan
// conversions were half of reading a member. ctx is checked before the
// read, not during it: the driver watches a cancellable context on every
// row it steps, and a range is a short read.
func (s *Store) SubscribedMembers(ctx context.Context, listID, lo, hi int64, keys MemberKeys, buf []ListMember) ([]ListMember, error) {
	if err := ctx.Err(); err != nil {
		return buf[:0], err
	}
	ctx = context.WithoutCancel(ctx)
	q := memberQueryBoth(keys)
	conn, err := s.reader.Conn(ctx)
	if err != nil {
		return buf[:0], fmt.Errorf("cannot read members of list %d: %w", listID, err)
	}
	defer conn.Close()
	out := buf[:0]
	err = conn.Raw(func(dc any) error {
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		rows, err := st.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{
			{Ordinal: 1, Value: listID}, {Ordinal: 2, Value: lo}, {Ordinal: 3, Value: hi}})
		if err != nil {
			return err
		}
		defer rows.Close()
		dest := make([]driver.Value, len(rows.Columns()))
		for {
			if err := rows.Next(dest); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			var m *ListMember
			out, m = nextMember(out)
			m.ContactID, _ = dest[0].(int64)
			m.Attributes = appendText(m.Attributes[:0], dest[1])
			m.Email, m.Phone, m.Ref = "", "", ""
			col := 2
			if keys&MemberEmail != 0 {
				m.Email, col = textValue(dest[col]), col+1
			}
			if keys&MemberPhone != 0 {
				m.Phone, col = textValue(dest[col]), col+1
			}
			if keys&MemberRef != 0 {
				m.Ref = textValue(dest[col])
			}
		}
	})
	if err != nil {
		return out, fmt.Errorf("cannot read members of list %d: %w", listID, err)
	}
	return out, nil
}

// textValue is a TEXT column's value as the driver gives it ("" for NULL).
func textValue(v driver.Value) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

func appendText(b []byte, v driver.Value) []byte {
	switch v := v.(type) {
	case string:
		return append(b, v...)
	case []byte:
		return append(b, v...)
	}
	return b
}

// BeginListJob creates an "ingesting" job of source list and returns its
// writer: the sender does not see it until Commit. fileID is the
// sends/<name>.toml file that started it (0 for the API), name what the
// job is shown as (that file's path, or lists/<list>).
func (s *Store) BeginListJob(ctx context.Context, partner string, fileID int64, name string, batchSize int) (*JobWriter, error) {
	// The file jobs' writer, so list sends take every improvement of the
	// bulk path; only the source differs, set before anything can see it.
	w, err := s.BeginFileJob(ctx, partner, fileID, name, batchSize)
	if err != nil {
		return nil, err
	}
	// The node is recorded for a send without a file, which has no file
	// claim: it tells another node whether the ingest is still live
	// (AbandonDeadNodesListSends).
	if _, err := s.writer.ExecContext(ctx, `UPDATE jobs SET source = ?, node = ? WHERE id = ?`, SourceList, s.NodeID(), w.JobID()); err != nil {
		w.Abort(ctx)
		return nil, fmt.Errorf("cannot create list job: %w", err)
	}
	return w, nil
}

// ListSend is what a job of source list was made from and what became of
// the list's subscribed members.
type ListSend struct {
	JobID           int64           `json:"-"`
	ListID          int64           `json:"-"`
	List            string          `json:"list"`
	Template        string          `json:"template"`
	TemplateVersion int             `json:"template_version"`
	Segment         string          `json:"segment"`
	Considered      int             `json:"considered"`
	Matched         int             `json:"matched"`
	SkippedByError  int             `json:"skipped_by_error"`
	FirstSkipError  string          `json:"first_skip_error,omitempty"`
	Rejected        int             `json:"rejected"`
	CreatedAt       time.Time       `json:"-"`
	Errors          []ListSendError `json:"errors,omitempty"`
}

// ListSendError is a matched contact whose message could not be made.
type ListSendError struct {
	ContactID int64  `json:"contact_id"`
	Column    string `json:"column,omitempty"`
	Value     string `json:"value,omitempty"`
	Error     string `json:"error"`
}

// RecordListSend stores what a list send's job was made from, its counts
// and its rejected contacts, before the job is committed: they go with the
// job if it is aborted (migration 0025).
func (s *Store) RecordListSend(ctx context.Context, ls ListSend) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO list_sends (job_id, list_id, list_name, template, template_version, segment,
		considered, matched, skipped_by_error, rejected, first_skip_error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ls.JobID, ls.ListID, ls.List, ls.Template, ls.TemplateVersion, ls.Segment,
		ls.Considered, ls.Matched, ls.SkippedByError, ls.Rejected, ls.FirstSkipError, ms(time.Now())); err != nil {
		return fmt.Errorf("cannot record list send of job %d: %w", ls.JobID, err)
	}
	if len(ls.Errors) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO list_send_errors (job_id, contact_id, col, value, error) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("cannot record rejected contacts: %w", err)
		}
		defer st.Close()
		for _, e := range ls.Errors {
			if _, err := st.ExecContext(ctx, ls.JobID, e.ContactID, e.Column, e.Value, e.Error); err != nil {
				return fmt.Errorf("cannot record rejected contact %d: %w", e.ContactID, err)
			}
		}
	}
	return tx.Commit()
}

// ListSendOf returns the list send that made a job, with up to maxErrors
// of its rejected contacts, or ErrNotFound.
func (s *Store) ListSendOf(ctx context.Context, jobID int64, maxErrors int) (ListSend, error) {
	ls := ListSend{JobID: jobID}
	var created int64
	err := s.reader.QueryRowContext(ctx, `SELECT list_id, list_name, template, template_version, segment,
		considered, matched, skipped_by_error, rejected, first_skip_error, created_at FROM list_sends WHERE job_id = ?`, jobID).Scan(
		&ls.ListID, &ls.List, &ls.Template, &ls.TemplateVersion, &ls.Segment,
		&ls.Considered, &ls.Matched, &ls.SkippedByError, &ls.Rejected, &ls.FirstSkipError, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return ListSend{}, fmt.Errorf("list send of job %d: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return ListSend{}, fmt.Errorf("cannot read list send of job %d: %w", jobID, err)
	}
	ls.CreatedAt = fromMS(created)
	rows, err := s.reader.QueryContext(ctx, `SELECT contact_id, col, value, error FROM list_send_errors
		WHERE job_id = ? ORDER BY contact_id, rowid LIMIT ?`, jobID, maxErrors)
	if err != nil {
		return ListSend{}, fmt.Errorf("cannot read rejected contacts of job %d: %w", jobID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e ListSendError
		if err := rows.Scan(&e.ContactID, &e.Column, &e.Value, &e.Error); err != nil {
			return ListSend{}, err
		}
		ls.Errors = append(ls.Errors, e)
	}
	return ls, rows.Err()
}

// nextMember returns out with one member more and that member: a slot
// below cap is reused with its Attributes buffer, so a reader's buffer
// stops allocating after its first range.
func nextMember(out []ListMember) ([]ListMember, *ListMember) {
	n := len(out)
	if n < cap(out) {
		out = out[:n+1]
	} else {
		out = append(out, ListMember{})
	}
	return out, &out[n]
}
