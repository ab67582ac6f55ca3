package ftp

import (
	"errors"
	"fmt"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/dropgate/dropgate/server/homefs"
)

var _ ftpserver.ClientDriverExtensionAllocate = (*clientDriver)(nil)

// AllocateSpace answers ALLO n: an upload announced as larger than the
// partner's limit or than the room left before the storage watermark is
// refused before any byte is sent. (ftpserverlib answers a refusal with
// 550 and the reason; the STOR that may follow gets 552.)
func (c *clientDriver) AllocateSpace(size int) error {
	if err := c.home.Allocate(int64(size)); err != nil {
		c.logger.Info("refused", "op", "allocate", "bytes", size, "reason", err)
		return storageExceeded(err)
	}
	return nil
}

// storageExceeded makes a storage refusal reach the client as FTP's 552
// ("exceeded storage allocation"), which ftpserverlib sends for
// ErrStorageExceeded, with dropgate's reason in the reply text.
func storageExceeded(err error) error {
	var se *homefs.StorageError
	if errors.As(err, &se) || errors.Is(err, homefs.ErrTooLarge) {
		return fmt.Errorf("%w: %w", ftpserver.ErrStorageExceeded, err)
	}
	return err
}

// Write maps a write refused for lack of room to the 552 reply.
func (u *upload) Write(p []byte) (int, error) {
	n, err := u.Upload.Write(p)
	return n, storageExceeded(err)
}
