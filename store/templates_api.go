package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// TemplatePage returns the newest version of each template, ordered by
// partner and name, after the given partner and name (the cursor), at
// most limit ("" partner: every partner's).
func (s *Store) TemplatePage(ctx context.Context, partner, afterPartner, afterName string, limit int) ([]Template, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+templateColumns+` FROM templates t
		WHERE (? = '' OR partner = ?) AND (partner, name) > (?, ?)
		AND version = (SELECT MAX(version) FROM templates u WHERE u.partner = t.partner AND u.name = t.name)
		ORDER BY partner, name LIMIT ?`, partner, partner, afterPartner, afterName, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list templates: %w", err)
	}
	return scanTemplates(rows)
}

// TemplateVersions returns a template's versions, newest first, below
// version before (0: from the newest), at most limit; ErrNotFound when the
// template has none.
func (s *Store) TemplateVersions(ctx context.Context, partner, name string, before, limit int) ([]Template, error) {
	if before <= 0 {
		before = 1 << 30
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT `+templateColumns+` FROM templates
		WHERE partner = ? AND name = ? AND version < ? ORDER BY version DESC LIMIT ?`, partner, name, before, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot list versions of template %s: %w", name, err)
	}
	out, err := scanTemplates(rows)
	if err == nil && len(out) == 0 {
		var n int
		if err := s.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM templates WHERE partner = ? AND name = ?`, partner, name).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, ErrNotFound
		}
	}
	return out, err
}

// TemplateVersion returns one version of a partner's template.
func (s *Store) TemplateVersion(ctx context.Context, partner, name string, version int) (Template, error) {
	t, err := scanTemplate(s.reader.QueryRowContext(ctx, `SELECT `+templateColumns+` FROM templates
		WHERE partner = ? AND name = ? AND version = ?`, partner, name, version))
	if errors.Is(err, sql.ErrNoRows) {
		return Template{}, ErrNotFound
	}
	return t, err
}

func scanTemplates(rows *sql.Rows) ([]Template, error) {
	defer rows.Close()
	out := []Template{}
	for rows.Next() {
		t, err := scanTemplate(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
