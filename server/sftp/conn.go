package sftp

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/server/sessions"
)

// serveConn runs one admitted SSH connection: bound the handshake and
// login in time, hold the partner to its session limit, then serve session
// channels.
func (s *Server) serveConn(c net.Conn, sess *sessions.Session) {
	remote := remoteOf(c)
	ic := &idleConn{Conn: c}
	// x/crypto/ssh has no handshake timeout of its own.
	c.SetDeadline(time.Now().Add(s.handshake))
	sconn, chans, reqs, err := ssh.NewServerConn(ic, s.sshConfig)
	if err != nil {
		s.logger.Info("SSH handshake or login failed", "remote", remote, "err", err)
		return
	}
	defer sconn.Close()
	ic.startIdleTimer(s.cfg.SFTP.IdleTimeout.D())

	partner := sconn.Permissions.Extensions[permPartner]
	method := sconn.Permissions.Extensions["method"]
	if err := sess.Login(partner); err != nil {
		// Logged by the registry. The handshake deadline still bounds
		// the connection.
		refuseSession(chans, reqs, err)
		return
	}
	if method == "publickey" {
		s.auth.LoggedIn("sftp", partner, method, c.RemoteAddr())
	}
	logger := s.logger.With("partner", partner, "remote", remote)
	logger.Info("session started", "method", method, "client", string(sconn.ClientVersion()))
	defer logger.Info("session ended")

	// Global requests are port forwarding and keepalives: all refused.
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			logger.Info("channel refused", "type", nc.ChannelType())
			nc.Reject(ssh.Prohibited, "dropgate serves SFTP only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			logger.Info("cannot accept channel", "err", err)
			continue
		}
		s.wg.Go(func() { s.serveSession(ch, chReqs, partner, sess, logger) })
	}
}

// refuseSession tells a client refused after login why, the way a shell
// would: the first session channel's subsystem request gets the reason on
// stderr and exit status 1 (OpenSSH's sftp prints it), then the connection
// ends.
func refuseSession(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, reason error) {
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.Prohibited, "dropgate serves SFTP only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		for req := range chReqs {
			if req.Type != "subsystem" && req.Type != "shell" && req.Type != "exec" {
				req.Reply(req.Type == "env", nil)
				continue
			}
			req.Reply(true, nil)
			fmt.Fprintf(ch.Stderr(), "dropgate: %v\n", reason)
			sendExitStatus(ch, 1)
			break
		}
		ch.Close()
		return
	}
}
