package config

import (
	"strings"
	"testing"
	"time"
)

func TestConnLimitsDecodePerServerAndValidate(t *testing.T) {
	src := `[sftp]
max_connections = 10
max_connections_per_ip = 11
max_sessions_per_partner = 0
login_timeout = "100ms"

[ftp]
max_connections = 50
max_connections_per_ip = 5
max_sessions_per_partner = 4
login_timeout = "10s"
passive_timeout = "0s"
`
	cfg := parseValid(t, src, nil)
	if cfg.FTP.MaxConnectionsPerIP != 5 || cfg.FTP.MaxSessionsPerPartner != 4 || cfg.FTP.LoginTimeout.D() != 10*time.Second {
		t.Errorf("ftp limits = %+v", cfg.FTP.ConnLimits)
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		"line 3: sftp.max_connections_per_ip: must not be more than max_connections (10)",
		"line 4: sftp.max_sessions_per_partner: must be at least 1",
		"line 5: sftp.login_timeout: must be at least 1s",
		"line 12: ftp.passive_timeout: must be at least 1s",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	for _, line := range []string{"line 8:", "line 9:", "line 10:", "line 11:"} {
		if strings.Contains(err.Error(), line) {
			t.Errorf("valid ftp limits refused:\n%v", err)
		}
	}
}

func TestConnLimitsHaveDefaults(t *testing.T) {
	cfg := Default()
	for name, l := range map[string]ConnLimits{"sftp": cfg.SFTP.ConnLimits, "ftp": cfg.FTP.ConnLimits} {
		if l != DefaultConnLimits() {
			t.Errorf("%s limits = %+v", name, l)
		}
	}
	if cfg.FTP.PassiveTimeout.D() != DefaultPassiveTimeout {
		t.Errorf("passive_timeout = %v", cfg.FTP.PassiveTimeout)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}
