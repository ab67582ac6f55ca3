package main

import (
	"bytes"
	"context"
	"log/slog"
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
