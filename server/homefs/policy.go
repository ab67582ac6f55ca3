package homefs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/dropgate/dropgate/config"
)

// PolicyError is a refusal by the home's rules (as opposed to a file system
// error). It unwraps to fs.ErrPermission so both protocols answer
// "permission denied", with Reason for the person reading the reply.
type PolicyError struct {
	Reason string
}

// Error returns the reason, written for the partner reading the reply.
func (e *PolicyError) Error() string { return e.Reason }

// Unwrap makes errors.Is(err, fs.ErrPermission) true.
func (e *PolicyError) Unwrap() error { return fs.ErrPermission }

var errNotAFile = errors.New("not a regular file")

// ingestFolders are the top-level folders a partner uploads into.
var ingestFolders = map[string]bool{
	config.InboxDir:     true,
	config.TemplatesDir: true,
	config.ListsDir:     true,
	config.SuppressDir:  true,
	config.EventsDir:    true,
	config.SendsDir:     true,
}

// listNameRule is the partner's message for a folder in lists/ that cannot
// name a list.
const listNameRule = "a list's folder name is 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit"

// place is a client path resolved against the home layout.
type place struct {
	rel   string // relative to the home, "." for the home itself
	top   string // first element: "inbox", "reports", ...
	depth int    // number of elements: 1 for "inbox", 2 for "inbox/a.csv"
}

func locate(name string) place {
	r := rel(name)
	if r == "." {
		return place{rel: r}
	}
	parts := strings.Split(r, "/")
	return place{rel: r, top: parts[0], depth: len(parts)}
}

func (p place) base() string {
	if i := strings.LastIndexByte(p.rel, '/'); i >= 0 {
		return p.rel[i+1:]
	}
	return p.rel
}

func (p place) canWriteFile() error {
	switch {
	case p.top == config.ReportsDir:
		return &PolicyError{"reports/ is read-only: dropgate writes results there; upload into inbox/, templates/, lists/<list>/, suppress/, events/ or sends/"}
	case p.top == config.ListsDir && p.depth != 3:
		// Only lists/<list>/<file> is read: a file anywhere else in lists/
		// would never be, which a partner could take for "done".
		return &PolicyError{fmt.Sprintf("cannot write %q: contact files go into a folder named after their list, lists/<list>/<file>.csv (make the folder first)", "/"+p.rel)}
	case p.top == config.ListsDir && !config.ValidListName(strings.Split(p.rel, "/")[1]):
		return &PolicyError{fmt.Sprintf("cannot write %q: %s", "/"+p.rel, listNameRule)}
	case p.depth < 2 || !ingestFolders[p.top]:
		return &PolicyError{fmt.Sprintf("cannot write %q: upload into inbox/, templates/, lists/<list>/, suppress/, events/ or sends/", "/"+strings.TrimPrefix(p.rel, "."))}
	case isUploadTemp(p.base()):
		return &PolicyError{"names starting with " + uploadTempPrefix + " are reserved for uploads in progress"}
	}
	return nil
}

func (p place) canMkdir() error {
	switch {
	case p.top == config.ReportsDir:
		return &PolicyError{"reports/ is read-only: dropgate writes results there"}
	case p.depth == 2 && p.top == config.ListsDir && !isUploadTemp(p.base()) && !config.ValidListName(p.base()):
		return &PolicyError{fmt.Sprintf("cannot make %q: %s", "/"+p.rel, listNameRule)}
	case p.depth == 2 && (p.top == config.InboxDir || p.top == config.ListsDir) && !isUploadTemp(p.base()):
		return nil
	}
	return &PolicyError{"folders can only be made directly in inbox/ (one per template) or lists/ (one per list)"}
}

func (p place) canRemoveFile() error {
	if isUploadTemp(p.base()) {
		return &PolicyError{"names starting with " + uploadTempPrefix + " are reserved for uploads in progress"}
	}
	if p.depth >= 2 && (ingestFolders[p.top] || p.top == config.ReportsDir) {
		return nil
	}
	return &PolicyError{"only files inside the home's folders can be deleted"}
}

func (p place) canRemoveDir() error {
	if p.depth >= 2 && ingestFolders[p.top] {
		return nil
	}
	return &PolicyError{"the home's top-level folders and reports/ cannot be removed"}
}

func (p place) canRenameFrom(isDir bool) error {
	switch {
	case isUploadTemp(p.base()):
		return &PolicyError{"names starting with " + uploadTempPrefix + " are reserved for uploads in progress"}
	case p.top == config.ReportsDir:
		return &PolicyError{"reports/ is read-only: download or delete reports, do not move them"}
	case p.depth < 2 || !ingestFolders[p.top]:
		return &PolicyError{"the home's top-level folders cannot be renamed"}
	case isDir:
		return p.canMkdir()
	}
	return nil
}

// parentsAreNotSymlinks refuses a write whose path goes through a symlink.
// os.Root already keeps every path inside the home; this keeps the
// folder rules honest too: a link planted at inbox/x pointing at ../reports
// must not make reports/ writable.
func (h *FS) parentsAreNotSymlinks(p place) error {
	parts := strings.Split(p.rel, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		info, err := h.root.Lstat(dir)
		if err != nil {
			return nil // the operation itself reports the missing folder
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return &PolicyError{fmt.Sprintf("/%s is a symbolic link; dropgate does not write through links", dir)}
		}
	}
	return nil
}
