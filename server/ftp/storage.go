package ftp

import (
	"errors"
	"fmt"
	"io"

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

// drainLimit bounds how much of an upload refused part-way is still read
// (and thrown away) so that the client can read the 552 reply.
const drainLimit = 256 << 20

// drain is the state of an upload refused part-way for its size.
type drain struct {
	refused error
	read    int64
}

// Write stores p, or, once the upload has been refused for its size (the
// partner's limit, the room left), reads the rest of it and throws it
// away: stopping reading would make the client's kernel see a reset and
// never read the reply, which then says why (552, from Close).
// Past drainLimit the data connection is dropped after all.
func (u *upload) Write(p []byte) (int, error) {
	if u.drain.refused != nil {
		u.drain.read += int64(len(p))
		if u.drain.read > drainLimit {
			return 0, u.drain.refused
		}
		return len(p), nil
	}
	n, err := u.Upload.Write(p)
	if err = storageExceeded(err); errors.Is(err, ftpserver.ErrStorageExceeded) {
		u.drain.refused, u.drain.read = err, int64(len(p)-n)
		return len(p), nil
	}
	return n, err
}

// ReadFrom stores what r yields (io.Copy's path, which lets the upload
// splice from the data connection to the file), with Write's handling of a
// refusal for size: the rest is read and thrown away, up to drainLimit.
func (u *upload) ReadFrom(r io.Reader) (int64, error) {
	if u.drain.refused != nil {
		return io.Copy(writerOnly{u}, r)
	}
	n, err := u.Upload.ReadFrom(r)
	if err = storageExceeded(err); !errors.Is(err, ftpserver.ErrStorageExceeded) {
		return n, err
	}
	u.drain.refused = err
	m, err := io.Copy(io.Discard, io.LimitReader(r, drainLimit+1))
	u.drain.read = m
	if m > drainLimit {
		return n + m, u.drain.refused
	}
	return n + m, err
}

// writerOnly hides ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }
