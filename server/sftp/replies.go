package sftp

import (
	"encoding/binary"
	"io"

	"github.com/dropgate/dropgate/server/sessions"
)

// replyChannel tells the session after each complete SFTP packet written to
// the client. At stop, a session whose upload has just been closed is closed
// only once the reply to that close is out, so the client learns the upload
// succeeded instead of seeing the connection drop.
//
// pkg/sftp writes a packet as a length-prefixed header and an optional
// payload under one lock, so Write is never called concurrently.
type replyChannel struct {
	io.ReadWriteCloser
	sess *sessions.Session

	length [4]byte // the current packet's length prefix, as far as written
	nlen   int
	left   uint32 // bytes of the current packet still to be written
}

func (c *replyChannel) Write(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(p)
	if c.packetsEnded(p[:n]) > 0 {
		c.sess.Replied()
	}
	return n, err
}

// packetsEnded follows the packet framing over written bytes and returns
// how many packets they complete.
func (c *replyChannel) packetsEnded(p []byte) int {
	ended := 0
	for len(p) > 0 {
		if c.nlen < len(c.length) {
			k := copy(c.length[c.nlen:], p)
			c.nlen += k
			p = p[k:]
			if c.nlen == len(c.length) {
				c.left = binary.BigEndian.Uint32(c.length[:])
			}
		} else {
			k := min(uint32(len(p)), c.left)
			c.left -= k
			p = p[k:]
		}
		if c.nlen == len(c.length) && c.left == 0 {
			ended++
			c.nlen = 0
		}
	}
	return ended
}
