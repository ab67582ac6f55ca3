package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const templateColumns = `id, partner, name, version, channel, subject, format, sender, body, source, created_at`

func scanTemplate(row interface{ Scan(...any) error }) (Template, error) {
	var t Template
	var created int64
	err := row.Scan(&t.ID, &t.Partner, &t.Name, &t.Version, &t.Channel, &t.Subject, &t.Format, &t.Sender, &t.Body, &t.Source, &created)
	t.CreatedAt = fromMS(created)
	return t, err
}

// SaveTemplate stores a new version of a template and returns it. Versions
// count up from 1 per partner and name.
func (s *Store) SaveTemplate(ctx context.Context, t Template) (Template, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return Template{}, err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM templates WHERE partner = ? AND name = ?`,
		t.Partner, t.Name).Scan(&t.Version); err != nil {
		return Template{}, err
	}
	now := time.Now()
	err = tx.QueryRowContext(ctx, `INSERT INTO templates (partner, name, version, channel, subject, format, sender, body, source, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, t.Partner, t.Name, t.Version, t.Channel, t.Subject, t.Format, t.Sender, t.Body, t.Source, ms(now)).Scan(&t.ID)
	if err != nil {
		return Template{}, fmt.Errorf("cannot save template %s: %w", t.Name, err)
	}
	t.CreatedAt = now.UTC()
	if err := tx.Commit(); err != nil {
		return Template{}, err
	}
	s.templates.saved(t.Partner, t.Name)
	return t, nil
}

// latestTemplateSQL is LatestTemplate's query.
const latestTemplateSQL = `SELECT ` + templateColumns + ` FROM templates
	WHERE partner = ? AND name = ? ORDER BY version DESC LIMIT 1`

// LatestTemplate returns the newest version of a partner's template.
func (s *Store) LatestTemplate(ctx context.Context, partner, name string) (Template, error) {
	// Every API send asks: kept in memory (templates_cache.go), and the
	// query prepared once (parsing it was a quarter of a send's CPU time).
	t, gen, ok := s.templates.get(partner, name)
	if ok {
		return t, nil
	}
	st, err := s.stmts.stmt(ctx, s.reader, latestTemplateSQL)
	if err != nil {
		return Template{}, err
	}
	t, err = scanTemplate(st.QueryRowContext(ctx, partner, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Template{}, ErrNotFound
	}
	if err == nil {
		s.templates.put(t, gen)
	}
	return t, err
}

// ListTemplates returns the newest version of each of a partner's templates
// ("" for every partner).
func (s *Store) ListTemplates(ctx context.Context, partner string) ([]Template, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+templateColumns+` FROM templates t
		WHERE (? = '' OR partner = ?) AND version = (SELECT MAX(version) FROM templates u WHERE u.partner = t.partner AND u.name = t.name)
		ORDER BY partner, name`, partner, partner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Template
	for rows.Next() {
		t, err := scanTemplate(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
