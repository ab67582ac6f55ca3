package sftp

import (
	"os"
	"sync"

	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/server/sessions"
)

// download is a file open for reading that holds the session open at stop
// until pkg/sftp closes it.
type download struct {
	f    *os.File
	sess *sessions.Session
	once sync.Once
}

func (d *download) ReadAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }

func (d *download) Close() error {
	err := d.f.Close()
	d.once.Do(d.sess.EndTransfer)
	return err
}

// upload is an upload that holds the session open at stop until pkg/sftp
// closes it (which renames it into place and reports it complete).
// TransferError, WriteAt and ReadAt are the Upload's own.
type upload struct {
	*homefs.Upload
	sess *sessions.Session
	done func() // forgets the upload in its session's handlers
	once sync.Once
}

func (u *upload) Close() error {
	err := u.Upload.Close()
	u.once.Do(func() {
		u.done()
		u.sess.EndTransfer()
	})
	return err
}
