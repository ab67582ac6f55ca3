package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ListInfo is a list with its members counted by status.
type ListInfo struct {
	List
	Subscribed   int `json:"subscribed"`
	Unsubscribed int `json:"unsubscribed"`
}

// Member is a contact of a list with its status there.
type Member struct {
	Contact
	Status string `json:"status"`
}

// Membership is one list a contact belongs to.
type Membership struct {
	List      string    `json:"list"`
	Status    string    `json:"status"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CreateList creates the partner's list name; created is false when it
// existed already (it is then returned as it is).
func (s *Store) CreateList(ctx context.Context, partner, name string) (l List, created bool, err error) {
	l = List{Partner: partner, Name: name}
	var at int64
	err = s.writer.QueryRowContext(ctx, `INSERT INTO lists (partner, name, created_at) VALUES (?, ?, ?)
		ON CONFLICT (partner, name) DO NOTHING RETURNING id, created_at`, partner, name, ms(time.Now())).Scan(&l.ID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		l, err = s.ListByName(ctx, partner, name)
		return l, false, err
	}
	if err != nil {
		return List{}, false, fmt.Errorf("cannot create list %q: %w", name, err)
	}
	l.CreatedAt = fromMS(at)
	return l, true, nil
}

const listInfoSelect = `SELECT l.id, l.partner, l.name, l.created_at,
		(SELECT count(*) FROM list_members m WHERE m.list_id = l.id AND m.status = 'subscribed') +
			(SELECT CAST(coalesce(sum(r.hi - r.lo + 1), 0) AS BIGINT) FROM list_member_ranges r WHERE r.list_id = l.id AND r.status = 'subscribed'),
		(SELECT count(*) FROM list_members m WHERE m.list_id = l.id AND m.status = 'unsubscribed') +
			(SELECT CAST(coalesce(sum(r.hi - r.lo + 1), 0) AS BIGINT) FROM list_member_ranges r WHERE r.list_id = l.id AND r.status = 'unsubscribed')
	FROM lists l `

func scanListInfo(r interface{ Scan(...any) error }) (ListInfo, error) {
	var li ListInfo
	var at int64
	if err := r.Scan(&li.ID, &li.Partner, &li.Name, &at, &li.Subscribed, &li.Unsubscribed); err != nil {
		return ListInfo{}, err
	}
	li.CreatedAt = fromMS(at)
	return li, nil
}

// Lists returns a partner's lists ("" partner: every partner's) by name,
// with their counts.
func (s *Store) Lists(ctx context.Context, partner string) ([]ListInfo, error) {
	rows, err := s.reader.QueryContext(ctx, listInfoSelect+`WHERE (? = '' OR l.partner = ?) ORDER BY l.partner, l.name`, partner, partner)
	if err != nil {
		return nil, fmt.Errorf("cannot list lists: %w", err)
	}
	defer rows.Close()
	out := []ListInfo{}
	for rows.Next() {
		li, err := scanListInfo(rows)
		if err != nil {
			return nil, fmt.Errorf("cannot list lists: %w", err)
		}
		out = append(out, li)
	}
	return out, rows.Err()
}

// ListInfoByName returns one list of the partner with its counts, or
// ErrNotFound.
func (s *Store) ListInfoByName(ctx context.Context, partner, name string) (ListInfo, error) {
	li, err := scanListInfo(s.reader.QueryRowContext(ctx, listInfoSelect+`WHERE l.partner = ? AND l.name = ?`, partner, name))
	if errors.Is(err, sql.ErrNoRows) {
		return ListInfo{}, fmt.Errorf("list %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return ListInfo{}, fmt.Errorf("cannot read list %q: %w", name, err)
	}
	return li, nil
}

const contactColumns = `c.id, c.partner, c.email, c.phone, c.ref, c.attributes, c.created_at, c.updated_at`

func scanContact(r interface{ Scan(...any) error }, extra ...any) (Contact, error) {
	var c Contact
	var email, phone, ref sql.NullString
	var attrs string
	var created, updated int64
	if err := r.Scan(append([]any{&c.ID, &c.Partner, &email, &phone, &ref, &attrs, &created, &updated}, extra...)...); err != nil {
		return Contact{}, err
	}
	c.Email, c.Phone, c.Ref = email.String, phone.String, ref.String
	c.Attributes, c.CreatedAt, c.UpdatedAt = json.RawMessage(attrs), fromMS(created), fromMS(updated)
	return c, nil
}

// ListMembers returns a list's members with contact id > after, in id
// order, at most limit; status "" is every status. The members stored as
// rows and those of member ranges (lists_ranges.go) are read apart, each
// up to limit, and merged, in one read transaction.
func (s *Store) ListMembers(ctx context.Context, listID int64, status string, after int64, limit int) ([]Member, error) {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("cannot list members: %w", err)
	}
	defer tx.Rollback()
	out, err := scanMembers(ctx, tx, nil, `SELECT `+contactColumns+`, m.status FROM list_members m JOIN contacts c ON c.id = m.contact_id
		WHERE m.list_id = ? AND m.contact_id > ? AND (? = '' OR m.status = ?) ORDER BY m.contact_id LIMIT ?`, listID, after, status, status, limit)
	if err != nil {
		return nil, err
	}
	// Each range has at least one member: limit ranges are enough.
	rows, err := tx.QueryContext(ctx, `SELECT lo, hi, status FROM list_member_ranges WHERE list_id = ?1
		AND lo >= coalesce((SELECT max(lo) FROM list_member_ranges WHERE list_id = ?1 AND lo <= ?2), ?2)
		AND hi >= ?2 AND (?3 = '' OR status = ?3) ORDER BY lo LIMIT ?4`, listID, after+1, status, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list members: %w", err)
	}
	var rs []memberRange
	for rows.Next() {
		var r memberRange
		if err := rows.Scan(&r.lo, &r.hi, &r.status); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot list members: %w", err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list members: %w", err)
	}
	var ranged []Member
	for _, r := range rs {
		if len(ranged) >= limit {
			break
		}
		ranged, err = scanMembers(ctx, tx, ranged, `SELECT `+contactColumns+`, CAST(? AS TEXT) FROM contacts c WHERE c.id BETWEEN ? AND ? ORDER BY c.id LIMIT ?`,
			r.status, max(r.lo, after+1), r.hi, limit-len(ranged))
		if err != nil {
			return nil, err
		}
	}
	if len(ranged) == 0 {
		return out, nil
	}
	merged := make([]Member, 0, min(limit, len(out)+len(ranged)))
	i, j := 0, 0
	for len(merged) < limit && (i < len(out) || j < len(ranged)) {
		if j == len(ranged) || i < len(out) && out[i].Contact.ID < ranged[j].Contact.ID {
			merged, i = append(merged, out[i]), i+1
		} else {
			merged, j = append(merged, ranged[j]), j+1
		}
	}
	return merged, nil
}

// scanMembers appends the members q reads (a contact's columns, then its
// status) to out.
func scanMembers(ctx context.Context, tx queryer, out []Member, q string, args ...any) ([]Member, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list members: %w", err)
	}
	defer rows.Close()
	if out == nil {
		out = []Member{}
	}
	for rows.Next() {
		var m Member
		c, err := scanContact(rows, &m.Status)
		if err != nil {
			return nil, fmt.Errorf("cannot list members: %w", err)
		}
		m.Contact = c
		out = append(out, m)
	}
	return out, rows.Err()
}

// FindContact returns the partner's contact with that email, phone or ref
// (normalised as stored; the first non-empty of them is used), or
// ErrNotFound.
func (s *Store) FindContact(ctx context.Context, partner, email, phone, ref string) (Contact, error) {
	q, v := `c.email = ?`, email
	switch {
	case email != "":
	case phone != "":
		q, v = `c.phone = ?`, phone
	case ref != "":
		q, v = `c.ref = ?`, ref
	default:
		return Contact{}, errors.New("give an email, a phone or a ref")
	}
	c, err := scanContact(s.reader.QueryRowContext(ctx, `SELECT `+contactColumns+` FROM contacts c WHERE c.partner = ? AND `+q, partner, v))
	if errors.Is(err, sql.ErrNoRows) {
		return Contact{}, fmt.Errorf("contact: %w", ErrNotFound)
	}
	if err != nil {
		return Contact{}, fmt.Errorf("cannot read contact: %w", err)
	}
	return c, nil
}

// ContactLists returns the lists a contact belongs to, by name. It tries
// each of the partner's lists by primary key: list_members has no index by
// contact (migration 0019).
func (s *Store) ContactLists(ctx context.Context, contactID int64) ([]Membership, error) {
	rows, err := s.reader.QueryContext(ctx, `
		SELECT l.name, m.status, m.updated_at FROM contacts c
		JOIN lists l ON l.partner = c.partner
		JOIN list_members m ON m.list_id = l.id AND m.contact_id = c.id
		WHERE c.id = ?1
		UNION ALL
		SELECT l.name, r.status, r.updated_at FROM contacts c
		JOIN lists l ON l.partner = c.partner
		JOIN list_member_ranges r ON r.list_id = l.id
			AND r.lo = (SELECT max(r2.lo) FROM list_member_ranges r2 WHERE r2.list_id = l.id AND r2.lo <= c.id)
		WHERE c.id = ?1 AND r.hi >= c.id
		ORDER BY 1`, contactID)
	if err != nil {
		return nil, fmt.Errorf("cannot read a contact's lists: %w", err)
	}
	defer rows.Close()
	out := []Membership{}
	for rows.Next() {
		var m Membership
		var at int64
		if err := rows.Scan(&m.List, &m.Status, &at); err != nil {
			return nil, fmt.Errorf("cannot read a contact's lists: %w", err)
		}
		m.UpdatedAt = fromMS(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// RemoveMember takes a contact off a list (the contact stays); ErrNotFound
// when it is not a member. A member of a member range is cut out of it.
func (s *Store) RemoveMember(ctx context.Context, listID, contactID int64) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := cutRangesTx(ctx, tx, listID, []int64{contactID}, true); err != nil {
		return fmt.Errorf("cannot remove member: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM list_members WHERE list_id = ? AND contact_id = ?`, listID, contactID)
	if err != nil {
		return fmt.Errorf("cannot remove member: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("member: %w", ErrNotFound)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot remove member: %w", err)
	}
	return nil
}
