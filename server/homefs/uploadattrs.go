package homefs

import (
	"io/fs"
	"path"
	"time"
)

// The attributes a client sets or reads on a file it is still uploading
// (SFTP fsetstat and fstat: OpenSSH's `put -p`, WinSCP's preserved
// timestamps, paramiko's chmod, utime and stat on the open file). They
// apply to the temporary file, whose times the rename into place keeps.

// Stat describes the upload as it stands, under its final name.
func (u *Upload) Stat() (fs.FileInfo, error) {
	info, err := u.file.Stat()
	if err != nil {
		return nil, err
	}
	return renamedInfo{FileInfo: info, name: path.Base(u.final)}, nil
}

// SetTimes sets the access and modification times the file keeps once in
// place.
func (u *Upload) SetTimes(atime, mtime time.Time) error {
	if err := u.home.root.Chtimes(u.tmp, atime, mtime); err != nil {
		return &fs.PathError{Op: "chtimes", Path: "/" + u.final, Err: unwrapPath(err)}
	}
	return nil
}

// Truncate sets the upload's size, within the partner's size limit.
func (u *Upload) Truncate(size int64) error {
	if err := u.checkSize(size); err != nil {
		return err
	}
	return u.file.Truncate(size)
}

type renamedInfo struct {
	fs.FileInfo
	name string
}

func (i renamedInfo) Name() string { return i.name }
