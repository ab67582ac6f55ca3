// Package homefs is a partner's home as the file servers see it: a folder
// confined with os.Root, where uploads land under a hidden temporary name and
// become visible only by a rename on a clean close.
//
// Confinement is never a lexical prefix check: every operation goes through
// an *os.Root, which refuses to leave the home through "..", absolute paths
// or symlinks planted inside it.
package homefs

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dropgate/dropgate/config"
)

// Notifier learns that an upload has finished and is in place under its
// real name. ingest.Ingester implements it.
type Notifier interface {
	// FileComplete is called once per completed file, with a slash-separated
	// path relative to the partner's home ("inbox/welcome/orders.csv").
	FileComplete(partner, relPath string)
}

// RenameNotifier is a Notifier that also learns when a client renamed a
// temporary name (a dotfile, "x.part", "x.filepart") to a real one: the
// client's own "upload finished" signal, which a partner whose uploads
// count only once renamed (complete = "rename") relies on. A Notifier
// without it is told through FileComplete.
type RenameNotifier interface {
	Notifier
	// FileRenamed is called for a file renamed from a temporary name to
	// relPath.
	FileRenamed(partner, relPath string)
}

// Options configure one partner's view of its home.
type Options struct {
	// Partner is the partner's name, passed to the Notifier.
	Partner string
	// MaxUploadBytes ends an upload that grows past it; 0 means no limit.
	MaxUploadBytes int64
	// Notifier is told about completed uploads; it may be nil.
	Notifier Notifier
	// MaxFolders caps the folders in inbox/ and lists/ together: making
	// one more is refused (each folder in inbox/ costs the ingest watcher
	// an inotify watch). 0 means no limit.
	MaxFolders int
	// Logger receives upload and refusal logs; nil discards them. The
	// servers pass their session logger, which already names the partner.
	Logger *slog.Logger
	// Space refuses uploads while storage is short (space.go); nil: never.
	Space Space
	// Node names this node's own folder of uploads in progress when
	// several nodes share the homes (config.Config.UploadsNode); "" for
	// one node. A node empties only its own folder at start, so it never
	// removes another node's uploads in flight.
	Node string
}

// FS is one partner's home, seen as "/". It is safe for concurrent use.
type FS struct {
	root      *os.Root
	partner   string
	maxUpload int64
	maxDirs   int
	notifier  Notifier
	logger    *slog.Logger
	space     Space
	uploadDir string // the folder of uploads in progress, relative to the home

	// The root stays open while uploads are in flight: an FTP session can
	// end while its transfer goroutine is still finishing the upload.
	mu      sync.Mutex
	uploads int
	closing bool
}

// Permissions of what dropgate creates in a home.
const (
	dirMode  fs.FileMode = 0o750
	fileMode fs.FileMode = 0o640
)

// Open confines a session to the home folder, creating the home and its
// standard folders when they are missing.
func Open(home string, opts Options) (*FS, error) {
	if err := os.MkdirAll(home, dirMode); err != nil {
		return nil, fmt.Errorf("cannot create partner home: %w", err)
	}
	root, err := os.OpenRoot(home)
	if err != nil {
		return nil, fmt.Errorf("cannot open partner home: %w", err)
	}
	for _, dir := range config.HomeFolders {
		if err := root.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			root.Close()
			return nil, fmt.Errorf("cannot create %s/ in partner home: %w", dir, err)
		}
	}
	uploads := nodeUploads(opts.Node)
	if err := root.MkdirAll(uploads, dirMode); err != nil {
		root.Close()
		return nil, fmt.Errorf("cannot create %s/ in partner home: %w", uploads, err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FS{
		root:      root,
		partner:   opts.Partner,
		maxUpload: opts.MaxUploadBytes,
		maxDirs:   opts.MaxFolders,
		notifier:  opts.Notifier,
		logger:    logger,
		space:     opts.Space,
		uploadDir: uploads,
	}, nil
}

// Close releases the home. Downloads already open stay readable; uploads in
// flight keep it open until they finish.
func (h *FS) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return nil
	}
	h.closing = true
	if h.uploads > 0 {
		return nil
	}
	return h.root.Close()
}

// acquire keeps the root open for one upload.
func (h *FS) acquire() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return errors.New("session is closing")
	}
	h.uploads++
	return nil
}

// release ends an upload's hold on the root.
func (h *FS) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.uploads--
	if h.closing && h.uploads == 0 {
		h.root.Close()
	}
}

// Partner returns the name of the partner whose home this is.
func (h *FS) Partner() string { return h.partner }

// Stat describes name, following symlinks that stay inside the home.
func (h *FS) Stat(name string) (fs.FileInfo, error) {
	if private(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return h.root.Stat(rel(name))
}

// Lstat describes name without following a final symlink.
func (h *FS) Lstat(name string) (fs.FileInfo, error) {
	if private(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
	}
	return h.root.Lstat(rel(name))
}

// ReadDir lists a folder, hiding uploads still in progress.
func (h *FS) ReadDir(name string) ([]fs.FileInfo, error) {
	if private(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	d, err := h.root.Open(rel(name))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.Readdir(-1)
	if err != nil {
		return nil, err
	}
	out := entries[:0]
	for _, e := range entries {
		if !isUploadTemp(e.Name()) {
			out = append(out, e)
		}
	}
	return out, nil
}

// OpenRead opens a regular file for reading (a download).
func (h *FS) OpenRead(name string) (*os.File, error) {
	if private(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := h.root.Open(rel(name))
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotAFile}
	}
	return f, nil
}

// Mkdir creates a folder: one per template under inbox/, one per list under
// lists/, up to MaxFolders in the two together.
func (h *FS) Mkdir(name string) error {
	p := locate(name)
	if err := errors.Join(p.canMkdir(), h.parentsAreNotSymlinks(p)); err != nil {
		return h.refuse("mkdir", p, err)
	}
	if err := h.folderCap(); err != nil {
		return h.refuse("mkdir", p, err)
	}
	return h.root.Mkdir(p.rel, dirMode)
}

// folderCap refuses one more folder once inbox/ and lists/ hold MaxFolders.
func (h *FS) folderCap() error {
	if h.maxDirs <= 0 {
		return nil
	}
	n := 0
	for _, top := range []string{config.InboxDir, config.ListsDir} {
		entries, err := h.root.Open(top)
		if err != nil {
			continue
		}
		list, _ := entries.ReadDir(-1)
		entries.Close()
		for _, e := range list {
			if e.IsDir() {
				n++
			}
		}
	}
	if n >= h.maxDirs {
		return &PolicyError{fmt.Sprintf("you already have %d folders in inbox/ and lists/, the most allowed (max_folders = %d); remove folders you no longer use, or ask your administrator to raise the limit", n, h.maxDirs)}
	}
	return nil
}

// Remove deletes a file, or an empty folder the partner may create.
// Top-level folders stay.
func (h *FS) Remove(name string) error {
	p := locate(name)
	info, err := h.root.Lstat(p.rel)
	if err != nil {
		return err
	}
	if info.IsDir() {
		err = p.canRemoveDir()
	} else {
		err = p.canRemoveFile()
	}
	err = errors.Join(err, h.parentsAreNotSymlinks(p))
	if err != nil {
		return h.refuse("remove", p, err)
	}
	return h.root.Remove(p.rel)
}

// Rename moves a file or a partner-made folder, overwriting a file at the
// target. A file renamed to a real name (not a dotfile nor a client temp
// name such as "x.filepart") is a completed upload and is notified.
func (h *FS) Rename(oldName, newName string) error {
	from, to := locate(oldName), locate(newName)
	info, err := h.root.Lstat(from.rel)
	if err != nil {
		return err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		// Partners cannot make links; one planted in the home must not
		// be handed to ingest, which reads files outside os.Root.
		return h.refuse("rename", from, &PolicyError{"symbolic links cannot be renamed"})
	}
	if err := errors.Join(from.canRenameFrom(info.IsDir()), h.parentsAreNotSymlinks(from)); err != nil {
		return h.refuse("rename", from, err)
	}
	if info.IsDir() {
		err = to.canMkdir()
	} else {
		err = to.canWriteFile()
	}
	err = errors.Join(err, h.parentsAreNotSymlinks(to))
	if err != nil {
		return h.refuse("rename", to, err)
	}
	if err := h.root.Rename(from.rel, to.rel); err != nil {
		return err
	}
	if info.IsDir() {
		return nil
	}
	if rn, ok := h.notifier.(RenameNotifier); ok && config.IsTempName(from.rel) && !config.IsTempName(to.rel) {
		h.logger.Info("upload renamed into place", "from", from.rel, "path", to.rel, "bytes", info.Size())
		rn.FileRenamed(h.partner, to.rel)
		return nil
	}
	h.completed(to.rel, info.Size())
	return nil
}

// completed tells the notifier that a file is in place under a real name.
func (h *FS) completed(relPath string, size int64) {
	if config.IsTempName(relPath) {
		h.logger.Debug("file in place under a temporary name; not ingested until renamed", "path", relPath)
		return
	}
	h.logger.Info("upload complete", "path", relPath, "bytes", size)
	if h.notifier != nil {
		h.notifier.FileComplete(h.partner, relPath)
	}
}

func (h *FS) refuse(op string, p place, err error) error {
	h.logger.Info("refused", "op", op, "path", p.rel, "reason", err)
	return &fs.PathError{Op: op, Path: "/" + strings.TrimPrefix(p.rel, "."), Err: err}
}

// CleanUploads empties this node's uploads folder of the partner home at
// home (node as in Options): an upload found there at start was cut off
// by a stop, and its client was told it failed. Call it before the
// servers start.
func CleanUploads(home, node string) error {
	dir := filepath.Join(home, nodeUploads(node))
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cannot empty %s: %w", dir, err)
	}
	return nil
}

// rel turns a client path (absolute or relative, "/" being the home) into a
// path relative to the home for os.Root. Cleaning it first is only
// cosmetic: os.Root is what refuses escapes.
func rel(name string) string {
	r := strings.TrimPrefix(path.Clean("/"+name), "/")
	if r == "" {
		return "."
	}
	return r
}

// nodeUploads is a node's folder of uploads in progress, relative to the
// home.
func nodeUploads(node string) string {
	if node == "" {
		return uploadsDir
	}
	return path.Join(uploadsDir, node)
}
