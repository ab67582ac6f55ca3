package sftp

// OpenSessions is how many SFTP sessions are open now (for metrics).
func (s *Server) OpenSessions() int { return s.sessions.Live() }
