// Command dropgate is a self-hosted FTP/SFTP ingestion gateway for business
// messaging. See the README for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "dropgate: stopping (send the signal again to force)")
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "dropgate: forced stop")
		os.Exit(1)
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dropgate:", err)
		os.Exit(exitCode(err))
	}
}
