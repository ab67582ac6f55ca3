package sftp

import (
	"encoding/binary"
	"io"
	"sync/atomic"

	"github.com/dropgate/dropgate/server/sessions"
)

// replyChannel tells the session whenever every request read so far has
// been answered. At stop, a session whose upload has just been closed is
// closed only then, once the reply to that close (and to anything the client
// pipelined before it) is out, so the client learns the upload succeeded
// instead of seeing the connection drop. pkg/sftp answers every request
// with exactly one packet.
//
// Reads come from pkg/sftp's one receiving goroutine, and it writes a packet
// (header, then optional payload) under its own lock, so each direction's
// framing is only ever followed by one goroutine at a time.
type replyChannel struct {
	io.ReadWriteCloser
	sess *sessions.Session

	in, out           framing
	requests, answers atomic.Int64
}

func (c *replyChannel) Read(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(p)
	// A request counts from its first bytes: until it is answered, the
	// session is not quiet.
	started, _ := c.in.feed(p[:n])
	c.requests.Add(int64(started))
	return n, err
}

func (c *replyChannel) Write(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(p)
	if _, ended := c.out.feed(p[:n]); ended > 0 && c.answers.Add(int64(ended)) >= c.requests.Load() {
		c.sess.Replied()
	}
	return n, err
}

// framing follows SFTP's packets (a 4-byte length, then that many bytes)
// over a byte stream cut anywhere.
type framing struct {
	length [4]byte // the current packet's length prefix, as far as seen
	nlen   int
	left   uint32 // bytes of the current packet still to come
}

// feed follows p and returns how many packets it begins and how many it
// completes.
func (f *framing) feed(p []byte) (started, ended int) {
	for len(p) > 0 {
		if f.nlen < len(f.length) {
			if f.nlen == 0 {
				started++
			}
			k := copy(f.length[f.nlen:], p)
			f.nlen += k
			p = p[k:]
			if f.nlen == len(f.length) {
				f.left = binary.BigEndian.Uint32(f.length[:])
			}
		} else {
			k := min(uint32(len(p)), f.left)
			f.left -= k
			p = p[k:]
		}
		if f.nlen == len(f.length) && f.left == 0 {
			f.nlen = 0
			ended++
		}
	}
	return started, ended
}
