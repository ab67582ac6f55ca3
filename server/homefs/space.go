package homefs

import (
	"errors"
	"fmt"
	"syscall"
)

// Space is the data folder's free-space watermark, as uploads see it;
// diskspace.Watermark implements it.
type Space interface {
	// Room returns how many bytes may still be written before free space
	// reaches the watermark, or an error (saying why) when it has.
	Room() (int64, error)
}

// StorageError refuses an upload the server has no room for: free space is
// below the watermark, the upload would take it there, or the disk is full.
// The servers answer it with their protocol's "insufficient storage" reply.
type StorageError struct{ Reason string }

func (e *StorageError) Error() string { return e.Reason }

// uploadRoom returns how many bytes a new upload may write (-1: no bound),
// or a *StorageError when none may start.
func (h *FS) uploadRoom() (int64, error) {
	if h.space == nil {
		return -1, nil
	}
	room, err := h.space.Room()
	if err != nil {
		return 0, &StorageError{Reason: "upload refused: " + err.Error()}
	}
	return room, nil
}

// Allocate checks that an upload of n bytes, announced before it starts
// (FTP ALLO), is within the partner's size limit and the room left.
func (h *FS) Allocate(n int64) error {
	if h.maxUpload > 0 && n > h.maxUpload {
		return fmt.Errorf("%w of %d bytes: %d bytes announced", ErrTooLarge, h.maxUpload, n)
	}
	room, err := h.uploadRoom()
	if err != nil {
		return err
	}
	if room >= 0 && n > room {
		return noRoom(room)
	}
	return nil
}

// noRoom is the error of an upload that grows past the room it had.
func noRoom(room int64) error {
	return &StorageError{Reason: fmt.Sprintf("upload refused: the server is short of storage space; only %d more bytes fit; try again later", room)}
}

// storageFailure turns a full disk into a StorageError the client can read.
func storageFailure(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &StorageError{Reason: "upload failed: the server's disk is full; try again later"}
	}
	return err
}
