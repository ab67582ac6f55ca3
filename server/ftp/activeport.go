package ftp

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	_ "unsafe" // go:linkname

	ftpserver "github.com/fclairamb/ftpserverlib"
)

// Active FTP (PORT, EPRT) makes the server connect to an address the client
// names. ftpserverlib checks that the address is the client's own, but not
// the port: "PORT 127,0,0,1,0,25" would have dropgate connect to port 25 of
// the client's address and send file bytes there. When that address is
// shared (NAT, a proxy, a host running other services) it is a way to
// reach services that trust dropgate's host. Ports below 1024 are refused
// with a 5xx reply before anything is dialled.
//
// ftpserverlib has no hook for PORT's address, so its PORT and EPRT
// handlers are wrapped in its command table, once per process (the policy
// is the same for every server). TestPrivilegedActivePortsAreRefused fails
// if an upgrade of ftpserverlib moves the table.

//go:linkname ftpCommands github.com/fclairamb/ftpserverlib.commandsMap
var ftpCommands map[string]*ftpserver.CommandDescription

var guardActivePortsOnce sync.Once

// minActivePort is the lowest port an active data connection may go to.
const minActivePort = 1024

func guardActivePorts() {
	guardActivePortsOnce.Do(func() {
		for _, name := range []string{"PORT", "EPRT"} {
			desc := ftpCommands[name]
			if desc == nil {
				panic("ftp: ftpserverlib has no " + name + " command to guard")
			}
			orig := reflect.ValueOf(desc.Fn)
			guarded := reflect.MakeFunc(orig.Type(), func(args []reflect.Value) []reflect.Value {
				if err := checkActivePort(name, args[1].String()); err != nil {
					if cc, ok := args[0].Interface().(ftpserver.ClientContext); ok {
						if cd, ok := cc.Extra().(*clientDriver); ok {
							cd.logger.Info("refused", "op", name, "arg", args[1].String(), "reason", err)
						}
					}
					return []reflect.Value{reflect.ValueOf(&err).Elem()}
				}
				return orig.Call(args)
			})
			reflect.ValueOf(desc).Elem().FieldByName("Fn").Set(guarded)
		}
	})
}

// checkActivePort refuses a PORT or EPRT argument that names a privileged
// port. Malformed arguments are left to ftpserverlib's own parser.
func checkActivePort(cmd, arg string) error {
	port, ok := activePort(cmd, strings.TrimSpace(arg))
	if !ok || port >= minActivePort {
		return nil
	}
	return fmt.Errorf("%s to port %d refused: ports below %d are privileged; let your client use a port of %d or more, or passive mode (PASV)",
		cmd, port, minActivePort, minActivePort)
}

func activePort(cmd, arg string) (int, bool) {
	if cmd == "EPRT" {
		// |proto|address|port|
		f := strings.Split(arg, "|")
		if len(f) != 5 {
			return 0, false
		}
		p, err := strconv.Atoi(f[3])
		return p, err == nil
	}
	f := strings.Split(arg, ",")
	if len(f) != 6 {
		return 0, false
	}
	hi, err1 := strconv.Atoi(strings.TrimSpace(f[4]))
	lo, err2 := strconv.Atoi(strings.TrimSpace(f[5]))
	if err1 != nil || err2 != nil || hi < 0 || hi > 255 || lo < 0 || lo > 255 {
		return 0, false
	}
	return hi<<8 | lo, true
}
