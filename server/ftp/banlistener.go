package ftp

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/dropgate/dropgate/server/auth"
)

// banListener refuses banned addresses at connect, before any command.
type banListener struct {
	net.Listener
	auth   *auth.Authenticator
	logger *slog.Logger
	plain  bool // false for implicit TLS, where a plain reply would be noise
}

func (l *banListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.auth.Banned(c.RemoteAddr()) {
			return c, nil
		}
		l.logger.Info("connection refused: address banned", "remote", c.RemoteAddr().String())
		go func() {
			if l.plain {
				c.SetWriteDeadline(time.Now().Add(2 * time.Second))
				fmt.Fprint(c, "421 Too many failed logins from your address; try again later.\r\n")
			}
			c.Close()
		}()
	}
}
