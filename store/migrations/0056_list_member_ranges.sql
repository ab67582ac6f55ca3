-- A list's members may also be stored as ranges of contact ids: a list
-- load's new contacts get consecutive ids, and one row for their span
-- replaces a membership row per contact (the list load's membership
-- b-tree was a fifth of its writing time). A contact is a member when
-- list_members has its row or a range of the list covers its id; the two
-- never overlap: whatever changes one member of a range (a status, a
-- removal, a replace load) first cuts the range around it
-- (store/lists_ranges.go). Every id in a range is a stored contact of
-- the list's partner (nothing deletes contacts; see 0018).
CREATE TABLE list_member_ranges (
    list_id    INTEGER NOT NULL,
    lo         INTEGER NOT NULL,
    hi         INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('subscribed', 'unsubscribed')),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (list_id, lo),
    CHECK (lo <= hi)
) STRICT, WITHOUT ROWID;
