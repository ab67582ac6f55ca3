package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
	"github.com/dropgate/dropgate/store/storetest"
)

// TestStartWarnsAboutMessagesOnARemovedChannel: messages queued on a
// channel that left the config are kept, and the start says so.
func TestStartWarnsAboutMessagesOnARemovedChannel(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	msgs := []store.Message{
		{Channel: "fax", Recipient: "+351912345678", Body: "old"},
		{Channel: "fax", Recipient: "+351912345679", Body: "old"},
		{Channel: "sms", Recipient: "+351912345670", Body: "fine"},
	}
	if _, _, _, err := st.CreateAPIJob(ctx, store.APIRequest{Partner: "acme"}, msgs); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	warnUnconfiguredChannels(ctx, config.Default(), st, slog.New(slog.NewTextHandler(&log, nil)))
	if got := log.String(); !strings.Contains(got, "channel=fax messages=2") || strings.Contains(got, "channel=sms") {
		t.Errorf("log:\n%s", got)
	}
}

// TestStartThatFailsReleasesWhatItBound: the FTP port is taken, so the
// start fails after the SFTP server bound its port and the watcher
// started; both are given back (the SFTP port can be bound again).
func TestStartThatFailsReleasesWhatItBound(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sftpAddr := free.Addr().String()
	free.Close()
	var out, log syncBuffer
	err = run(context.Background(), []string{"serve", "--data", t.TempDir(), "--admin-addr", "127.0.0.1:0",
		"--sftp-addr", sftpAddr, "--ftp-addr", busy.Addr().String()},
		func(string) string { return "" }, strings.NewReader(""), &out, &log)
	if err == nil || !strings.Contains(err.Error(), "FTP") {
		t.Fatalf("serve with a busy FTP port: %v, want an FTP error\n%s", err, log.String())
	}
	ln, err := net.Listen("tcp", sftpAddr)
	if err != nil {
		t.Fatalf("the SFTP port is still held after the failed start: %v", err)
	}
	ln.Close()
}
