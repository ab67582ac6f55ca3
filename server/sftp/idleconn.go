package sftp

import (
	"net"
	"sync/atomic"
	"time"
)

// idleConn closes a session that neither sends nor receives for a while,
// by pushing the connection's deadline forward on reads and writes. It is
// inactive until startIdleTimer, so the handshake deadline set on the
// connection before it holds. The deadline moves at most once per tenth of
// the timeout (and at least once a second), so a busy transfer does not pay
// for a timer update per packet.
type idleConn struct {
	net.Conn
	timeout atomic.Int64 // nanoseconds; 0 while the handshake runs
	last    atomic.Int64 // unix nanoseconds of the last deadline push
}

func (c *idleConn) startIdleTimer(timeout time.Duration) {
	if timeout <= 0 {
		c.Conn.SetDeadline(time.Time{})
		return
	}
	c.timeout.Store(int64(timeout))
	c.last.Store(0)
	c.touch()
}

func (c *idleConn) touch() {
	timeout := time.Duration(c.timeout.Load())
	if timeout <= 0 {
		return
	}
	now := time.Now()
	step := min(timeout/10, time.Second)
	if last := c.last.Load(); last != 0 && now.UnixNano()-last < int64(step) {
		return
	}
	c.last.Store(now.UnixNano())
	c.Conn.SetDeadline(now.Add(timeout))
}

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}
