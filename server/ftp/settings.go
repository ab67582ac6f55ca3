package ftp

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"github.com/dropgate/dropgate/config"
)

// tlsMode is the [ftp] tls setting.
type tlsMode int

const (
	tlsOff tlsMode = iota
	tlsOptional
	tlsRequired
	tlsImplicit
)

func parseTLSMode(s string) (tlsMode, error) {
	switch s {
	case "off":
		return tlsOff, nil
	case "", "optional":
		return tlsOptional, nil
	case "required":
		return tlsRequired, nil
	case "implicit":
		return tlsImplicit, nil
	}
	return 0, fmt.Errorf("ftp.tls: %q is not one of off, optional, required, implicit", s)
}

// settingsFor turns [ftp] into ftpserverlib settings.
func settingsFor(fc config.FTPConfig, mode tlsMode) (*ftpserver.Settings, error) {
	s := &ftpserver.Settings{
		Banner: "dropgate FTP: upload into inbox/, results in reports/",
		// ftpserverlib defaults to ASCII and would rewrite CRLF in a STOR
		// sent without TYPE I: files must arrive byte for byte.
		DefaultTransferType:    ftpserver.TransferTypeBinary,
		DisableASCIIConversion: true,
		// Data connections must come from the control connection's
		// address, or anyone could feed a passive port (FTP bounce, theft).
		PasvConnectionsCheck:    ftpserver.IPMatchRequired,
		ActiveConnectionsCheck:  ftpserver.IPMatchRequired,
		ActiveTransferPortNon20: true,
		DisableSite:             true,  // SITE CHMOD/SYMLINK: nothing a partner needs
		EnableCOMB:              false, // COMB appends: half files
		IdleTimeout:             int(fc.IdleTimeout.D().Seconds()),
	}
	switch mode {
	case tlsRequired:
		s.TLSRequired = ftpserver.MandatoryEncryption
	case tlsImplicit:
		s.TLSRequired = ftpserver.ImplicitEncryption
	default:
		s.TLSRequired = ftpserver.ClearOrEncrypted
	}
	if fc.PassivePorts != "" {
		r, err := parsePortRange(fc.PassivePorts)
		if err != nil {
			return nil, err
		}
		s.PassiveTransferPortRange = r
	}
	if h := fc.PublicHost; h != "" {
		if ip := net.ParseIP(h); ip != nil {
			s.PublicHost = h
		} else {
			// A name: resolve at each PASV so a changing address follows.
			s.PublicIPResolver = func(ftpserver.ClientContext) (string, error) {
				ips, err := net.LookupIP(h)
				if err != nil {
					return "", fmt.Errorf("cannot resolve ftp.public_host %q: %w", h, err)
				}
				for _, ip := range ips {
					if v4 := ip.To4(); v4 != nil {
						return v4.String(), nil
					}
				}
				return "", fmt.Errorf("ftp.public_host %q has no IPv4 address", h)
			}
		}
	}
	return s, nil
}

func parsePortRange(s string) (ftpserver.PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	start, err1 := strconv.Atoi(strings.TrimSpace(lo))
	end, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || start < 1 || end > 65535 || start > end {
		return ftpserver.PortRange{}, fmt.Errorf("ftp.passive_ports: %q is not a range like \"50000-50100\"", s)
	}
	return ftpserver.PortRange{Start: start, End: end}, nil
}
