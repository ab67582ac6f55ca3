package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Membership ranges (migration 0056). A list load's new contacts get
// consecutive ids, so their memberships are one list_member_ranges row
// (list, lo, hi, status) for the whole span instead of a list_members row
// per contact: that b-tree was a fifth of a first import's writing time.
// A contact is a member when list_members has its row or one of the
// list's ranges covers its id, and the two never overlap: whatever
// changes one member of a range (its status, its removal, a replace load
// that did not name it) first cuts the range around it (cutRangesTx).
// Ranges are only ever made by SQLite's list load; PostgreSQL's writes
// rows, but its readers and writers (the same SQL, and the load's
// PostgreSQL path) follow ranges as SQLite's do.

// memberRange is a row of list_member_ranges.
type memberRange struct {
	lo, hi    int64
	status    string
	updatedAt int64
}

// size is how many contacts the range covers.
func (r memberRange) size() int64 { return r.hi - r.lo + 1 }

// rangesOverlapQuery reads the ranges of list ?1 that may overlap
// [?2, ?3], in id order: from the last range starting at or before ?2
// (the one that may cover it; the caller drops it when it ends before
// ?2), so that the primary key is searched, not the list's every range.
const rangesOverlapQuery = `SELECT lo, hi, status, updated_at FROM list_member_ranges
	WHERE list_id = ?1 AND lo BETWEEN coalesce((SELECT max(lo) FROM list_member_ranges WHERE list_id = ?1 AND lo <= ?2), ?2) AND ?3
	ORDER BY lo`

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type execQueryer interface {
	queryer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// rangesOverlapping returns the list's ranges that cover any id in
// [lo, hi], in id order.
func rangesOverlapping(ctx context.Context, q queryer, listID, lo, hi int64) ([]memberRange, error) {
	rows, err := q.QueryContext(ctx, rangesOverlapQuery, listID, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("cannot read member ranges: %w", err)
	}
	defer rows.Close()
	var out []memberRange
	for rows.Next() {
		var r memberRange
		if err := rows.Scan(&r.lo, &r.hi, &r.status, &r.updatedAt); err != nil {
			return nil, fmt.Errorf("cannot read member ranges: %w", err)
		}
		if r.hi >= lo {
			out = append(out, r)
		}
	}
	return out, rows.Err()
}

// insertRangeTx stores a range.
func insertRangeTx(ctx context.Context, tx execQueryer, listID int64, r memberRange) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO list_member_ranges (list_id, lo, hi, status, updated_at) VALUES (?, ?, ?, ?, ?)`,
		listID, r.lo, r.hi, r.status, r.updatedAt); err != nil {
		return fmt.Errorf("cannot store member range: %w", err)
	}
	return nil
}

// cutRangesTx takes ids (ascending, no repeats) out of the list's ranges:
// each range covering any of them is replaced by the pieces around them.
// With materialize, each id taken out gets its own list_members row with
// its range's status and time, so it stays the member it was (a caller
// that writes the row itself right after passes false). It returns how
// many ids were in a range.
func cutRangesTx(ctx context.Context, tx execQueryer, listID int64, ids []int64, materialize bool) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	rs, err := rangesOverlapping(ctx, tx, listID, ids[0], ids[len(ids)-1])
	if err != nil || len(rs) == 0 {
		return 0, err
	}
	cut, j := 0, 0
	for _, r := range rs {
		for j < len(ids) && ids[j] < r.lo {
			j++
		}
		k := j
		for k < len(ids) && ids[k] <= r.hi {
			k++
		}
		if k == j {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM list_member_ranges WHERE list_id = ? AND lo = ?`, listID, r.lo); err != nil {
			return 0, fmt.Errorf("cannot cut member range: %w", err)
		}
		next := r.lo
		for _, id := range ids[j:k] {
			if id > next {
				if err := insertRangeTx(ctx, tx, listID, memberRange{next, id - 1, r.status, r.updatedAt}); err != nil {
					return 0, err
				}
			}
			next = id + 1
			if materialize {
				if _, err := tx.ExecContext(ctx, `INSERT INTO list_members (list_id, contact_id, status, updated_at) VALUES (?, ?, ?, ?)`,
					listID, id, r.status, r.updatedAt); err != nil {
					return 0, fmt.Errorf("cannot store list membership: %w", err)
				}
			}
		}
		if next <= r.hi {
			if err := insertRangeTx(ctx, tx, listID, memberRange{next, r.hi, r.status, r.updatedAt}); err != nil {
				return 0, err
			}
		}
		cut += k - j
		j = k
	}
	return cut, nil
}

// cutContactRangesTx cuts the contact out of every range of its
// partner's lists, each membership becoming a list_members row: for a
// writer that then changes one contact's memberships with plain SQL.
func cutContactRangesTx(ctx context.Context, tx execQueryer, partner string, contactIDs []int64) error {
	if len(contactIDs) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT list_id FROM list_member_ranges WHERE list_id IN (SELECT id FROM lists WHERE partner = ?)`, partner)
	if err != nil {
		return fmt.Errorf("cannot read member ranges: %w", err)
	}
	var lists []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("cannot read member ranges: %w", err)
		}
		lists = append(lists, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, l := range lists {
		if _, err := cutRangesTx(ctx, tx, l, contactIDs, true); err != nil {
			return err
		}
	}
	return nil
}

// removeUnseenRangesTx is a replace load's removal for the list's
// ranges: each range keeps only the runs of ids the load's table of
// members seen (seen: SQLite's temp.list_seen, PostgreSQL's list_seen)
// holds. It returns how many members that removed.
func removeUnseenRangesTx(ctx context.Context, tx execQueryer, listID int64, seen string) (int, error) {
	rs, err := rangesOverlapping(ctx, tx, listID, 0, 1<<62)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, r := range rs {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+seen+` WHERE contact_id BETWEEN ? AND ?`, r.lo, r.hi).Scan(&n); err != nil {
			return 0, fmt.Errorf("cannot read members seen: %w", err)
		}
		if n == r.size() {
			continue
		}
		removed += int(r.size() - n)
		if _, err := tx.ExecContext(ctx, `DELETE FROM list_member_ranges WHERE list_id = ? AND lo = ?`, listID, r.lo); err != nil {
			return 0, fmt.Errorf("cannot cut member range: %w", err)
		}
		if n == 0 {
			continue
		}
		rows, err := tx.QueryContext(ctx, `SELECT contact_id FROM `+seen+` WHERE contact_id BETWEEN ? AND ? ORDER BY contact_id`, r.lo, r.hi)
		if err != nil {
			return 0, fmt.Errorf("cannot read members seen: %w", err)
		}
		var runs []memberRange
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, fmt.Errorf("cannot read members seen: %w", err)
			}
			if len(runs) > 0 && runs[len(runs)-1].hi+1 == id {
				runs[len(runs)-1].hi = id
			} else {
				runs = append(runs, memberRange{id, id, r.status, r.updatedAt})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		for _, run := range runs {
			if err := insertRangeTx(ctx, tx, listID, run); err != nil {
				return 0, err
			}
		}
	}
	return removed, nil
}
