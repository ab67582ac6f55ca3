package ftp

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"

	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/server/sessions"
)

// clientDriver is one session's file system: an afero.Fs over the
// partner's confined home (never afero.NewBasePathFs, whose lexical prefix
// check a planted symlink defeats), plus the ftpserverlib extensions that
// let it refuse resumes and appends and hide upload temporaries.
type clientDriver struct {
	home   *homefs.FS
	sess   *sessions.Session
	logger *slog.Logger
}

var (
	_ ftpserver.ClientDriver                      = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtentionFileTransfer = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionFileList     = (*clientDriver)(nil)
	_ ftpserver.ClientDriverExtensionRemoveDir    = (*clientDriver)(nil)
	_ ftpserver.FileTransferError                 = (*upload)(nil)
)

var errNotSupported = errors.New("not supported by dropgate")

const writeFlags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREATE | os.O_TRUNC

// GetHandle opens a transfer: RETR reads, STOR starts an upload under a
// temporary name. REST n + STOR and APPE are refused: they would end in a
// clean close of half a file or two spliced files. No transfer starts once
// the server is stopping.
func (c *clientDriver) GetHandle(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	if err := c.sess.BeginTransfer(); err != nil {
		c.logger.Info("refused", "op", "transfer", "path", name, "reason", err)
		return nil, err
	}
	ft, err := c.openTransfer(name, flags, offset)
	if err != nil {
		c.sess.EndTransfer()
		return nil, err
	}
	return ft, nil
}

func (c *clientDriver) openTransfer(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	if flags&writeFlags == 0 {
		f, err := c.home.OpenRead(name)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return &download{File: f, sess: c.sess}, nil
	}
	if flags&os.O_APPEND != 0 || offset != 0 {
		c.logger.Info("refused", "op", "resume or append", "path", name, "reason", homefs.ErrPartialWrite)
		return nil, homefs.ErrPartialWrite
	}
	u, err := c.home.Create(name)
	if err != nil {
		return nil, storageExceeded(err)
	}
	return &upload{Upload: u, sess: c.sess}, nil
}

// ReadDir lists a folder.
func (c *clientDriver) ReadDir(name string) ([]os.FileInfo, error) { return c.home.ReadDir(name) }

// RemoveDir removes an empty folder the partner made (RMD).
func (c *clientDriver) RemoveDir(name string) error {
	info, err := c.home.Lstat(name)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return &fs.PathError{Op: "rmdir", Path: name, Err: errors.New("not a folder")}
	}
	return c.home.Remove(name)
}

// Remove deletes a file (DELE).
func (c *clientDriver) Remove(name string) error {
	info, err := c.home.Lstat(name)
	if err != nil {
		return err
	}
	if info.IsDir() {
		return &fs.PathError{Op: "delete", Path: name, Err: errors.New("is a folder: use RMD")}
	}
	return c.home.Remove(name)
}

// Rename moves a file (RNFR/RNTO); a rename to a real name completes an
// upload made under a client temporary name.
func (c *clientDriver) Rename(oldName, newName string) error { return c.home.Rename(oldName, newName) }

// Stat describes a path.
func (c *clientDriver) Stat(name string) (os.FileInfo, error) { return c.home.Stat(name) }

// Mkdir makes a folder (MKD).
func (c *clientDriver) Mkdir(name string, _ os.FileMode) error { return c.home.Mkdir(name) }

// MkdirAll makes one folder: homes are only one level deep below their
// top-level folders.
func (c *clientDriver) MkdirAll(name string, _ os.FileMode) error { return c.home.Mkdir(name) }

// Open opens a file for reading.
func (c *clientDriver) Open(name string) (afero.File, error) {
	f, err := c.home.OpenRead(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// OpenFile opens a file for reading; writes go through GetHandle.
func (c *clientDriver) OpenFile(name string, flag int, _ os.FileMode) (afero.File, error) {
	if flag&writeFlags != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotSupported}
	}
	return c.Open(name)
}

// Create is not used by ftpserverlib when GetHandle exists.
func (c *clientDriver) Create(name string) (afero.File, error) {
	return nil, &fs.PathError{Op: "create", Path: name, Err: errNotSupported}
}

// RemoveAll is refused: deletes go one file at a time.
func (c *clientDriver) RemoveAll(name string) error {
	return &fs.PathError{Op: "remove", Path: name, Err: errNotSupported}
}

// Name names the file system.
func (c *clientDriver) Name() string { return "dropgate home" }

// Chmod is accepted and ignored: clients set modes after uploads, and
// failing them over it would fail the transfer.
func (c *clientDriver) Chmod(name string, _ os.FileMode) error {
	_, err := c.home.Lstat(name)
	return err
}

// Chown is refused.
func (c *clientDriver) Chown(name string, _, _ int) error {
	return &fs.PathError{Op: "chown", Path: name, Err: errNotSupported}
}

// Chtimes (MFMT) is accepted and ignored, like Chmod.
func (c *clientDriver) Chtimes(name string, _, _ time.Time) error {
	_, err := c.home.Lstat(name)
	return err
}
