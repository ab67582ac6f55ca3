package config

import "time"

// ConnLimits bound one file server's connections. [sftp] and [ftp] each
// have their own, so one protocol's flood does not lock partners out of the
// other.
type ConnLimits struct {
	// MaxConnections bounds the connections open at once, logged in or not.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerIP bounds the connections open at once from one
	// address.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// MaxSessionsPerPartner bounds one partner's logged-in sessions. Over
	// FTP each session holds at most one passive port, so this is also a
	// partner's share of passive_ports.
	MaxSessionsPerPartner int `toml:"max_sessions_per_partner"`
	// LoginTimeout is how long a connection may take to log in.
	LoginTimeout Duration `toml:"login_timeout"`
}

// DefaultConnLimits are the limits of each file server when the config sets
// none: room for the parallel transfers of rclone (4 transfers and 8
// checkers), lftp mirror and FileZilla, and not for a flood.
func DefaultConnLimits() ConnLimits {
	return ConnLimits{
		MaxConnections:        256,
		MaxConnectionsPerIP:   32,
		MaxSessionsPerPartner: 16,
		LoginTimeout:          Duration(30 * time.Second),
	}
}

// DefaultPassiveTimeout is how long an FTP passive port waits for its data
// connection when [ftp] passive_timeout is not set.
const DefaultPassiveTimeout = 20 * time.Second

func checkConnLimits(bad func(field, format string, args ...any), section string, l ConnLimits) {
	if l.MaxConnections < 1 {
		bad(section+".max_connections", "must be at least 1")
	}
	if l.MaxConnectionsPerIP < 1 {
		bad(section+".max_connections_per_ip", "must be at least 1")
	} else if l.MaxConnections >= 1 && l.MaxConnectionsPerIP > l.MaxConnections {
		bad(section+".max_connections_per_ip", "must not be more than max_connections (%d)", l.MaxConnections)
	}
	if l.MaxSessionsPerPartner < 1 {
		bad(section+".max_sessions_per_partner", "must be at least 1")
	}
	if l.LoginTimeout < Duration(time.Second) {
		bad(section+".login_timeout", `must be at least 1s, such as "30s"`)
	}
}
