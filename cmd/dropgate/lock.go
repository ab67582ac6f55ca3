package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the file in data_dir whose lock says a dropgate process
// is using that directory.
const lockFileName = "dropgate.lock"

// dataDirLock is the exclusive hold of one process on a data_dir.
type dataDirLock struct{ f *os.File }

// lockDataDir takes data_dir for this process, or says which process has
// it. Two daemons on one data_dir would each take the other's work for
// what a crash left behind: the second one's start would mark the first's
// node stopped, empty the uploads in progress of its partners' homes and
// return its messages in flight to the queue. The lock is the kernel's
// (flock), so a process killed with -9 leaves nothing to clean up, and a
// start finding the lock free knows that no earlier life of it still runs.
func lockDataDir(dir string) (*dataDirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create data dir: %w", err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open the data directory's lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil && len(strings.TrimSpace(string(b))) > 0 {
			pid = "process " + strings.TrimSpace(string(b))
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another dropgate (%s holds %s); stop it first, or give this one its own --data", dir, pid, path)
		}
		return nil, fmt.Errorf("cannot lock the data directory: %w", err)
	}
	// The pid is for the message above only; the lock is what counts.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDirLock{f: f}, nil
}

// release gives data_dir up (closing the file drops the lock).
func (l *dataDirLock) release() error {
	return l.f.Close()
}
