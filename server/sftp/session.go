package sftp

import (
	"errors"
	"io"
	"log/slog"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/server/sessions"
)

// serveSession answers a session channel's requests: the sftp subsystem is
// served, env is accepted and ignored (as sshd does for the LANG and LC_*
// that OpenSSH's client sends by default), everything else (shell, exec,
// pty, agent and X11 forwarding) is refused, so the client reports a clean
// failure. When the subsystem ends cleanly the client gets exit status 0,
// as from OpenSSH's sftp-server.
func (s *Server) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, partner string, sess *sessions.Session, logger *slog.Logger) {
	defer ch.Close()
	started := false
	for req := range reqs {
		switch {
		case req.Type == "env":
			// Nothing in a file session reads the environment.
			req.Reply(true, nil)
			continue
		case req.Type == "subsystem" && !started && subsystemName(req.Payload) == "sftp":
			started = true
			req.Reply(true, nil)
			// The subsystem owns the channel until the client ends it;
			// later requests on it are refused by the goroutine below.
			go func() {
				for r := range reqs {
					r.Reply(r.Type == "env", nil)
				}
			}()
			s.serveSFTP(ch, partner, sess, logger)
			return
		}
		logger.Info("session request refused", "request", req.Type)
		req.Reply(false, nil)
	}
}

// serveSFTP serves the subsystem until the client ends it, then reports its
// exit status: 0 when the client ended it cleanly.
func (s *Server) serveSFTP(ch ssh.Channel, partner string, sess *sessions.Session, logger *slog.Logger) {
	var maxUpload int64
	var maxFolders int
	if p, ok := s.cfg.Partner(partner); ok {
		maxUpload, maxFolders = p.WithDefaults().MaxUploadBytes, p.WithDefaults().MaxFolders
	}
	var notifier homefs.Notifier
	if s.notifier != nil {
		notifier = s.notifier
	}
	home, err := homefs.Open(s.cfg.PartnerHome(partner), homefs.Options{
		Partner:        partner,
		MaxUploadBytes: maxUpload,
		MaxFolders:     maxFolders,
		Notifier:       notifier,
		Space:          s.space,
		Node:           s.cfg.UploadsNode(),
		Logger:         logger,
	})
	if err != nil {
		logger.Error("cannot open partner home", "err", err)
		sendExitStatus(ch, 1)
		return
	}
	defer home.Close()
	rs := pkgsftp.NewRequestServer(&replyChannel{ReadWriteCloser: ch, sess: sess}, handlersFor(home, sess, logger))
	err = rs.Serve()
	if errors.Is(err, io.EOF) {
		err = nil // the client ended the session: pkg/sftp's clean end
	}
	status := uint32(0)
	if err != nil {
		logger.Debug("sftp subsystem ended", "err", err)
		status = 1
	}
	// Before rs.Close, which closes the channel.
	sendExitStatus(ch, status)
	rs.Close()
}

// sendExitStatus tells the client how the subsystem ended, as sshd does for
// OpenSSH's sftp-server.
func sendExitStatus(ch ssh.Channel, status uint32) {
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
}

// subsystemName decodes a "subsystem" request's payload: one SSH string.
func subsystemName(payload []byte) string {
	var msg struct{ Name string }
	if err := ssh.Unmarshal(payload, &msg); err != nil {
		return ""
	}
	return msg.Name
}
