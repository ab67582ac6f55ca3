package ftp

import (
	"net"
	"syscall"
)

// The control connection is a Telnet stream (RFC 959). Clients that abort a
// transfer by the book send Telnet IP and Synch (IAC IP, IAC DM) before
// ABOR, the IAC of DM as TCP urgent data; Python's ftplib sends "ABOR\r\n"
// itself as urgent data. Without SO_OOBINLINE the kernel takes the urgent
// byte out of the stream: ftplib's ABOR then arrives without its "\n", the
// command is never complete and the client hangs until it gives up, when
// its data connection closes cleanly and the partial upload would be kept.
// So urgent data stays in line, and Telnet commands are removed from the
// plain control stream before ftpserverlib reads it.

// Telnet bytes (RFC 854).
const (
	telnetSE   = 240
	telnetSB   = 250
	telnetWILL = 251
	telnetDONT = 254
	telnetIAC  = 255
)

// keepUrgentInline sets SO_OOBINLINE on a TCP connection. Where it cannot
// be set the connection works as before.
func keepUrgentInline(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_OOBINLINE, 1)
	})
}

type telnetState uint8

const (
	telnetData   telnetState = iota
	telnetCmd                // after IAC
	telnetOption             // after IAC WILL/WONT/DO/DONT: one option byte
	telnetSub                // inside IAC SB ... IAC SE
	telnetSubIAC             // IAC inside a subnegotiation
)

// telnetFilter removes Telnet commands from a byte stream cut anywhere,
// keeping an escaped IAC (IAC IAC) as one 0xFF byte.
type telnetFilter struct{ state telnetState }

// filter rewrites p in place without Telnet commands and returns the
// length left.
func (t *telnetFilter) filter(p []byte) int {
	n := 0
	for _, b := range p {
		switch t.state {
		case telnetData:
			if b == telnetIAC {
				t.state = telnetCmd
				continue
			}
			p[n] = b
			n++
		case telnetCmd:
			switch {
			case b == telnetIAC:
				p[n] = b
				n++
				t.state = telnetData
			case b >= telnetWILL && b <= telnetDONT:
				t.state = telnetOption
			case b == telnetSB:
				t.state = telnetSub
			default: // IP, DM, AO, AYT, NOP, ...: no argument
				t.state = telnetData
			}
		case telnetOption:
			t.state = telnetData
		case telnetSub:
			if b == telnetIAC {
				t.state = telnetSubIAC
			}
		case telnetSubIAC:
			if b == telnetSE {
				t.state = telnetData
			} else {
				t.state = telnetSub
			}
		}
	}
	return n
}
