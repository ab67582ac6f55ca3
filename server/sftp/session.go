package sftp

import (
	"log/slog"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/dropgate/dropgate/server/homefs"
	"github.com/dropgate/dropgate/server/sessions"
)

// serveSession answers a session channel's requests: the sftp subsystem is
// served, everything else (shell, exec, pty, env, agent and X11
// forwarding) is refused, so the client reports a clean failure.
func (s *Server) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, partner string, sess *sessions.Session, logger *slog.Logger) {
	defer ch.Close()
	started := false
	for req := range reqs {
		if req.Type == "subsystem" && !started && subsystemName(req.Payload) == "sftp" {
			started = true
			req.Reply(true, nil)
			// The subsystem owns the channel until the client ends it;
			// later requests on it are refused by the goroutine below.
			go func() {
				for r := range reqs {
					r.Reply(false, nil)
				}
			}()
			s.serveSFTP(ch, partner, sess, logger)
			return
		}
		logger.Info("session request refused", "request", req.Type)
		req.Reply(false, nil)
	}
}

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
		Logger:         logger,
	})
	if err != nil {
		logger.Error("cannot open partner home", "err", err)
		return
	}
	defer home.Close()
	rs := pkgsftp.NewRequestServer(&replyChannel{ReadWriteCloser: ch, sess: sess}, handlersFor(home, sess))
	if err := rs.Serve(); err != nil {
		logger.Debug("sftp subsystem ended", "err", err)
	}
	rs.Close()
}

// subsystemName decodes a "subsystem" request's payload: one SSH string.
func subsystemName(payload []byte) string {
	var msg struct{ Name string }
	if err := ssh.Unmarshal(payload, &msg); err != nil {
		return ""
	}
	return msg.Name
}
