package ftp

import (
	"os"
	"sync"

	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/server/sessions"
)

// download is a RETR's file; it holds the session open at stop until
// ftpserverlib closes it. Embedding *os.File keeps WriteTo, so plain
// downloads still go out with sendfile.
type download struct {
	*os.File
	sess *sessions.Session
	once sync.Once
}

func (d *download) Close() error {
	err := d.File.Close()
	d.once.Do(d.sess.EndTransfer)
	return err
}

// upload is a STOR's file; it holds the session open at stop until
// ftpserverlib closes it (which renames it into place and reports it
// complete). TransferError is the Upload's own.
type upload struct {
	*homefs.Upload
	sess  *sessions.Session
	once  sync.Once
	drain drain // an upload refused for its size is read to its end (storage.go)
}

func (u *upload) Close() error {
	err := u.Upload.Close()
	u.once.Do(u.sess.EndTransfer)
	return storageExceeded(err)
}
