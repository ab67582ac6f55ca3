package ftp

// OpenSessions is how many FTP sessions are open now (for metrics).
func (s *Server) OpenSessions() int { return s.driver.sessions.Live() }
