package sftp

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sync"
	"time"

	pkgsftp "github.com/pkg/sftp"

	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/server/sessions"
)

// handlers serves pkg/sftp requests from a partner's confined home.
type handlers struct {
	home   *homefs.FS
	sess   *sessions.Session
	logger *slog.Logger

	// Uploads in progress by final path. pkg/sftp turns fstat and fsetstat
	// on an open handle into Stat and Setstat of its path, which does not
	// exist until the upload is closed: they are answered from here.
	mu      sync.Mutex
	uploads map[string]*upload
}

var (
	_ pkgsftp.FileReader           = (*handlers)(nil)
	_ pkgsftp.OpenFileWriter       = (*handlers)(nil)
	_ pkgsftp.PosixRenameFileCmder = (*handlers)(nil)
	_ pkgsftp.LstatFileLister      = (*handlers)(nil)
	_ pkgsftp.RealPathFileLister   = (*handlers)(nil)
	_ pkgsftp.ReadlinkFileLister   = (*handlers)(nil)
	_ pkgsftp.TransferError        = (*upload)(nil)
)

func handlersFor(home *homefs.FS, sess *sessions.Session, logger *slog.Logger) pkgsftp.Handlers {
	h := &handlers{home: home, sess: sess, logger: logger, uploads: map[string]*upload{}}
	return pkgsftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
}

// Fileread opens a file for download.
func (h *handlers) Fileread(r *pkgsftp.Request) (io.ReaderAt, error) {
	if err := h.sess.BeginTransfer(); err != nil {
		return nil, err
	}
	f, err := h.home.OpenRead(r.Filepath)
	if err != nil {
		h.sess.EndTransfer()
		return nil, status(err) // and not a typed nil in the interface
	}
	return &download{f: f, sess: h.sess}, nil
}

// Filewrite starts an upload (OpenSSH's sftp and curl open write-only).
func (h *handlers) Filewrite(r *pkgsftp.Request) (io.WriterAt, error) {
	u, err := h.create(r)
	if err != nil {
		return nil, status(err)
	}
	return u, nil
}

// OpenFile starts an upload for clients that open read-write (the pkg/sftp
// client's Create does).
func (h *handlers) OpenFile(r *pkgsftp.Request) (pkgsftp.WriterAtReaderAt, error) {
	u, err := h.create(r)
	if err != nil {
		return nil, status(err)
	}
	return u, nil
}

// create refuses appends and partial overwrites in ingest folders: every
// upload starts a new whole file under a temporary name. None starts once
// the server is stopping.
func (h *handlers) create(r *pkgsftp.Request) (*upload, error) {
	if err := h.sess.BeginTransfer(); err != nil {
		return nil, err
	}
	u, err := h.createFile(r)
	if err != nil {
		h.sess.EndTransfer()
		return nil, err
	}
	up := &upload{Upload: u, sess: h.sess}
	up.done = func() { h.forget(r.Filepath, up) }
	h.mu.Lock()
	h.uploads[r.Filepath] = up
	h.mu.Unlock()
	return up, nil
}

// openUpload returns this session's upload in progress to p, if any.
func (h *handlers) openUpload(p string) *upload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.uploads[p]
}

func (h *handlers) forget(p string, u *upload) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.uploads[p] == u {
		delete(h.uploads, p)
	}
}

func (h *handlers) createFile(r *pkgsftp.Request) (*homefs.Upload, error) {
	flags := r.Pflags()
	if flags.Append {
		h.logger.Info("refused", "op", "append", "path", r.Filepath, "reason", homefs.ErrPartialWrite)
		return nil, homefs.ErrPartialWrite
	}
	if !flags.Trunc {
		// Without TRUNC an existing file would be overwritten in place
		// from some offset: a resume. A new file is fine.
		if _, err := h.home.Lstat(r.Filepath); err == nil {
			h.logger.Info("refused", "op", "resume", "path", r.Filepath, "reason", homefs.ErrPartialWrite)
			return nil, homefs.ErrPartialWrite
		}
	}
	return h.home.Create(r.Filepath)
}

// Filecmd handles the commands that change the tree.
func (h *handlers) Filecmd(r *pkgsftp.Request) error {
	return status(h.filecmd(r))
}

func (h *handlers) filecmd(r *pkgsftp.Request) error {
	switch r.Method {
	case "Setstat":
		if u := h.openUpload(r.Filepath); u != nil {
			return setUploadAttrs(u, r)
		}
		// Clients set times and modes after an upload (WinSCP, `put -p`);
		// refusing would fail the transfer, and ingest does not care.
		if _, err := h.home.Lstat(r.Filepath); err != nil {
			return err
		}
		return nil
	case "Rename":
		// SFTPv3 rename must not overwrite.
		if _, err := h.home.Lstat(r.Target); err == nil {
			return fs.ErrExist
		}
		return h.home.Rename(r.Filepath, r.Target)
	case "Rmdir":
		info, err := h.home.Lstat(r.Filepath)
		if err != nil {
			return err
		}
		if !info.IsDir() {
			return errors.New("not a folder")
		}
		return h.home.Remove(r.Filepath)
	case "Remove":
		info, err := h.home.Lstat(r.Filepath)
		if err != nil {
			return err
		}
		if info.IsDir() {
			return errors.New("is a folder: use rmdir")
		}
		return h.home.Remove(r.Filepath)
	case "Mkdir":
		return h.home.Mkdir(r.Filepath)
	case "Symlink", "Link":
		// Never: a link target arrives raw and links are how homes leak.
		return pkgsftp.ErrSSHFxOpUnsupported
	}
	return pkgsftp.ErrSSHFxOpUnsupported
}

// setUploadAttrs applies fsetstat to an upload in progress: times are kept
// (the rename into place preserves them), a size truncates it; modes and
// owners are accepted and ignored, as for finished files, since dropgate
// sets its own.
func setUploadAttrs(u *upload, r *pkgsftp.Request) error {
	flags, attrs := r.AttrFlags(), r.Attributes()
	if flags.Size {
		if err := u.Truncate(int64(attrs.Size)); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		return u.SetTimes(time.Unix(int64(attrs.Atime), 0), time.Unix(int64(attrs.Mtime), 0))
	}
	return nil
}

// PosixRename is rename with overwrite (posix-rename@openssh.com), what
// OpenSSH's sftp uses.
func (h *handlers) PosixRename(r *pkgsftp.Request) error {
	return status(h.home.Rename(r.Filepath, r.Target))
}

// Filelist answers List and Stat.
func (h *handlers) Filelist(r *pkgsftp.Request) (pkgsftp.ListerAt, error) {
	switch r.Method {
	case "List":
		entries, err := h.home.ReadDir(r.Filepath)
		if err != nil {
			return nil, err
		}
		return listerAt(entries), nil
	case "Stat":
		if u := h.openUpload(r.Filepath); u != nil {
			info, err := u.Stat() // fstat on the open upload
			if err != nil {
				return nil, err
			}
			return listerAt{info}, nil
		}
		info, err := h.home.Stat(r.Filepath)
		if err != nil {
			return nil, err
		}
		return listerAt{info}, nil
	}
	return nil, pkgsftp.ErrSSHFxOpUnsupported
}

// Lstat describes a path without following a final symlink.
func (h *handlers) Lstat(r *pkgsftp.Request) (pkgsftp.ListerAt, error) {
	info, err := h.home.Lstat(r.Filepath)
	if err != nil {
		return nil, err
	}
	return listerAt{info}, nil
}

// RealPath resolves a path lexically inside the home: "/" is the home.
func (h *handlers) RealPath(p string) (string, error) {
	return path.Clean("/" + p), nil
}

// Readlink is unsupported: dropgate serves no symlinks.
func (h *handlers) Readlink(string) (string, error) {
	return "", pkgsftp.ErrSSHFxOpUnsupported
}

// status makes refusals by the home's rules arrive as "permission denied"
// (pkg/sftp maps only its own error values and syscall errors to codes),
// keeping the reason as the message.
func status(err error) error {
	var pe *homefs.PolicyError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %w", pkgsftp.ErrSSHFxPermissionDenied, err)
	}
	return err
}

// listerAt serves a fixed list of entries.
type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) || off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}
