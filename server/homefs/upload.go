package homefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"
)

// ErrTooLarge ends an upload that grows past the partner's limit.
var ErrTooLarge = errors.New("upload exceeds the partner's size limit")

// ErrPartialWrite refuses a resume (non-zero offset) or an append in a
// folder that is ingested: the result would be half a file or two spliced
// files that the watcher would take as complete.
var ErrPartialWrite = &PolicyError{"resume (REST) and append (APPE) are not accepted in inbox/, templates/, lists/ and suppress/: upload the whole file again"}

// Upload is a file being written under a hidden temporary name in the
// home's uploads folder. Close renames it into place unless the transfer
// failed.
//
// WriteAt may be called concurrently (SFTP clients pipeline writes); Write
// and Seek are for sequential writers (FTP).
type Upload struct {
	home      *FS
	file      *os.File
	tmp       string // relative to the home
	final     string
	max       int64
	room      int64 // bytes that fit before the storage watermark; -1: no bound
	offset    int64 // next sequential Write position
	failed    atomic.Pointer[error]
	closeOnce sync.Once
	closeErr  error
}

// Create starts an upload to name. The file appears under name only when
// the Upload is closed without a transfer error.
func (h *FS) Create(name string) (*Upload, error) {
	p := locate(name)
	if err := errors.Join(p.canWriteFile(), h.parentsAreNotSymlinks(p)); err != nil {
		return nil, h.refuse("upload", p, err)
	}
	if info, err := h.root.Stat(p.rel); err == nil && info.IsDir() {
		return nil, &fs.PathError{Op: "upload", Path: "/" + p.rel, Err: errors.New("is a folder")}
	}
	room, err := h.uploadRoom()
	if err != nil {
		h.logger.Info("refused", "op", "upload", "path", "/"+p.rel, "reason", err)
		return nil, err
	}
	if err := h.acquire(); err != nil {
		return nil, err
	}
	tmp := path.Join(h.uploadDir, uploadTempName(p.base()))
	f, err := h.root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		h.release()
		// Report the client's path, not our temporary name.
		return nil, &fs.PathError{Op: "upload", Path: "/" + p.rel, Err: unwrapPath(err)}
	}
	return &Upload{home: h, file: f, tmp: tmp, final: p.rel, max: h.maxUpload, room: room}, nil
}

// Name returns the path the upload will have once complete, relative to the home.
func (u *Upload) Name() string { return u.final }

// WriteAt writes p at off. It is safe for concurrent use.
func (u *Upload) WriteAt(p []byte, off int64) (int, error) {
	if err := u.checkSize(off + int64(len(p))); err != nil {
		return 0, err
	}
	n, err := u.file.WriteAt(p, off)
	if err != nil {
		err = storageFailure(err)
		u.fail(err)
	}
	return n, err
}

// ReadAt reads back what was written, for SFTP clients that open files
// read-write.
func (u *Upload) ReadAt(p []byte, off int64) (int, error) { return u.file.ReadAt(p, off) }

// Write appends p at the sequential position (FTP transfers).
func (u *Upload) Write(p []byte) (int, error) {
	n, err := u.WriteAt(p, u.offset)
	u.offset += int64(n)
	return n, err
}

// ReadFrom writes what r yields at the sequential position until r ends
// (FTP transfers: ftpserverlib copies with io.Copy, which uses it). Through
// *os.File's ReadFrom, data from a plain TCP connection goes to the file
// with splice(2), never through this process's memory: a fraction of the
// CPU that 32 KiB reads and writes cost. The size limit and the room left
// bound what is read: one byte past them fails the upload, as Write would.
func (u *Upload) ReadFrom(r io.Reader) (int64, error) {
	if _, err := u.file.Seek(u.offset, io.SeekStart); err != nil {
		u.fail(err)
		return 0, err
	}
	src := r
	if bound := u.bound(); bound >= 0 {
		src = &io.LimitedReader{R: r, N: max(bound-u.offset, 0) + 1}
	}
	n, err := u.file.ReadFrom(src)
	u.offset += n
	if err != nil {
		err = storageFailure(err)
		u.fail(err)
		return n, err
	}
	return n, u.checkSize(u.offset)
}

// bound is the most bytes the upload may hold, or -1 for no bound.
func (u *Upload) bound() int64 {
	b := int64(-1)
	if u.max > 0 {
		b = u.max
	}
	if u.room >= 0 && (b < 0 || u.room < b) {
		b = u.room
	}
	return b
}

// Read is not supported: an upload is write-only over FTP.
func (u *Upload) Read([]byte) (int, error) {
	return 0, errors.New("upload is write-only")
}

// Seek allows only the start: a resumed upload would be half a file.
func (u *Upload) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && (whence == io.SeekStart || whence == io.SeekCurrent && u.offset == 0) {
		u.offset = 0
		return 0, nil
	}
	return u.offset, ErrPartialWrite
}

// TransferError marks the upload as failed: Close then discards it. Both
// pkg/sftp and ftpserverlib call it before Close when a transfer breaks.
func (u *Upload) TransferError(err error) {
	if err == nil {
		err = errors.New("transfer failed")
	}
	u.fail(err)
}

// Close finishes the upload: on success the file is renamed into place and
// the notifier told; after a transfer error the temporary file is removed.
// Close is idempotent.
func (u *Upload) Close() error {
	u.closeOnce.Do(func() {
		u.closeErr = u.finish()
		u.home.release()
	})
	return u.closeErr
}

func (u *Upload) finish() error {
	info, statErr := u.file.Stat()
	closeErr := u.file.Close()
	if failed := u.failed.Load(); failed != nil || closeErr != nil || statErr != nil {
		err := errors.Join(derefErr(failed), closeErr, statErr)
		if rmErr := u.home.root.Remove(u.tmp); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			u.home.logger.Error("cannot remove an aborted upload", "path", u.tmp, "err", rmErr)
		}
		u.home.logger.Info("upload aborted; nothing kept", "path", u.final, "err", err)
		return fmt.Errorf("upload of /%s aborted: %w", u.final, err)
	}
	if err := u.home.root.Rename(u.tmp, u.final); err != nil {
		u.home.root.Remove(u.tmp)
		return fmt.Errorf("cannot move upload into place at /%s: %w", u.final, unwrapPath(err))
	}
	u.home.completed(u.final, info.Size())
	return nil
}

func (u *Upload) checkSize(end int64) error {
	if u.max > 0 && end > u.max {
		err := fmt.Errorf("%w of %d bytes", ErrTooLarge, u.max)
		u.fail(err)
		return err
	}
	if u.room >= 0 && end > u.room {
		err := noRoom(u.room)
		u.fail(err)
		return err
	}
	return nil
}

// fail records the first error that dooms the upload.
func (u *Upload) fail(err error) { u.failed.CompareAndSwap(nil, &err) }

func derefErr(p *error) error {
	if p == nil {
		return nil
	}
	return *p
}

// unwrapPath drops os.Root's PathError so our temporary name stays private.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
