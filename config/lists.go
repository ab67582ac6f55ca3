package config

import (
	"fmt"
	"regexp"
)

// How a file dropped into lists/<list>/ applies to its list.
const (
	// ListModeUpsert (the default) inserts and updates the file's
	// contacts; members the file does not name stay as they are.
	ListModeUpsert = "upsert"
	// ListModeReplace makes the file the whole list: members it does not
	// name are removed from the list (the contacts themselves stay, with
	// their other lists).
	ListModeReplace = "replace"
)

// PartnerList is the settings of one of a partner's lists
// ([[partner.list]]). A list needs no entry to exist: a folder in lists/
// or a POST /api/v1/lists makes it, with the defaults.
type PartnerList struct {
	Name string `toml:"name"`
	// Mode is upsert (default) or replace.
	Mode string `toml:"mode"`
}

// listNameRe is the form of a list name: the folder lists/<list>/ and the
// {list} of the API. Letters may be upper case (folders made by
// Windows clients often are); names are compared exactly.
var listNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidListName reports whether name can name a list: 1 to 64 letters,
// digits, '-', '_' or '.', not starting with '.', '-' or '_'.
func ValidListName(name string) bool {
	return listNameRe.MatchString(name)
}

// ListMode returns the mode of the partner's list name: its [[partner.list]]
// entry's, or ListModeUpsert.
func (p Partner) ListMode(name string) string {
	for _, l := range p.Lists {
		if l.Name == name && l.Mode != "" {
			return l.Mode
		}
	}
	return ListModeUpsert
}

// validateLists checks a partner's [[partner.list]] entries; f is the
// partner's field name ("partner[0]").
func (p *Partner) validateLists(f string, bad func(field, format string, args ...any)) {
	seen := map[string]bool{}
	for i, l := range p.Lists {
		lf := fmt.Sprintf("%s.list[%d]", f, i)
		switch {
		case !ValidListName(l.Name):
			bad(lf+".name", "%q must be 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit", l.Name)
		case seen[l.Name]:
			bad(lf+".name", "list %q is configured twice", l.Name)
		}
		seen[l.Name] = true
		switch l.Mode {
		case "", ListModeUpsert, ListModeReplace:
		default:
			bad(lf+".mode", "%q is not upsert or replace", l.Mode)
		}
	}
}
