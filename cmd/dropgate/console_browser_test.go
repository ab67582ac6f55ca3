package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The status console driven by Debian's chromium, headless, through
// chromedp: sign in with the form, watch a job's progress reach 100%, read
// a rejected file's reasons, cancel a job from its page, sign out. A
// screenshot of each page is saved in the test's temp folder (its path is
// logged), or in $DROPGATE_SCREENSHOTS when set.
func TestConsoleInABrowser(t *testing.T) {
	chromium := requireClient(t, "chromium")
	cfg := testConfig(t, t.TempDir())
	d := startDaemon(t, cfg)
	home := d.Home("acme")
	renameInto(t, filepath.Join(home, "templates", "shipped.tmpl"), shippedTemplate)
	d.waitTemplates(t, 1)
	renameInto(t, filepath.Join(home, "inbox", "orders.csv"),
		"email,first_name,order_id,template\r\nana@example.com,Ana,A-1,shipped\r\nbob@example.com,Bob,B-2,shipped\r\n")
	renameInto(t, filepath.Join(home, "inbox", "broken.csv"),
		"email,first_name,order_id,template\r\nnot-an-address,Ana,A-1,shipped\r\n")
	// A job that waits (send_at next year), to be cancelled from its page.
	later := time.Now().AddDate(1, 0, 0).Format("2006-01-02 15:04")
	renameInto(t, filepath.Join(home, "inbox", "later.csv"),
		"email,first_name,order_id,template,send_at\r\ncid@example.com,Cid,C-3,shipped,"+later+"\r\n")

	var laterJob int64
	waitFor(t, 30*time.Second, "three files settled", func() bool {
		var resp struct {
			Jobs []struct {
				ID       int64
				FileName string `json:"file_name"`
			}
		}
		d.API(t, "GET", "/api/v1/jobs", &resp)
		var files struct{ Files []struct{ Status string } }
		d.API(t, "GET", "/api/v1/files?status=rejected", &files)
		for _, j := range resp.Jobs {
			if strings.HasSuffix(j.FileName, "later.csv") {
				laterJob = j.ID
			}
		}
		return len(resp.Jobs) == 2 && len(files.Files) == 1 && laterJob != 0
	})

	shots := t.TempDir()
	if dir := os.Getenv("DROPGATE_SCREENSHOTS"); dir != "" {
		shots = dir // to look at them after the run
	}
	t.Logf("screenshots in %s", shots)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// FullScreenshot(100) is a PNG (below 100 it is a JPEG).
	// The first Run starts the browser and must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("cannot start chromium: %v", err)
	}
	base := "http://" + d.Addrs.Admin.String()
	step := func(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, timeout)
		defer scancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	step("sign-in form", 30*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	shot("1-sign-in")
	step("sign in", 30*time.Second, chromedp.SendKeys(chromedp.CSS("#token"), testAdminToken), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("svg.chart")))
	shot("2-overview")

	waitFor(t, 60*time.Second, "the orders job at 100% on the jobs page", func() bool {
		step("jobs page", 30*time.Second, chromedp.Navigate(base+"/jobs?status=done"), chromedp.WaitVisible(chromedp.CSS("table.jobs")))
		return strings.Contains(text("table.jobs"), "100%")
	})
	shot("3-jobs")

	step("rejected files", 30*time.Second, chromedp.Navigate(base+"/files?status=rejected"), chromedp.WaitVisible(chromedp.CSS("table.files")))
	step("open the rejected file", 30*time.Second, chromedp.Click(chromedp.CSS("table.files tbody a")), chromedp.WaitVisible(chromedp.CSS("#file-errors")))
	if reasons := text("#file-errors"); !strings.Contains(reasons, "not-an-address") {
		t.Fatalf("the rejected file's reasons do not show the bad value:\n%s", reasons)
	}
	shot("4-rejected-file")

	step("open the waiting job", 30*time.Second, chromedp.Navigate(base+"/jobs/"+strconv.FormatInt(laterJob, 10)), chromedp.WaitVisible(chromedp.CSS("#action-cancel")))
	step("cancel it", 30*time.Second, chromedp.Click(chromedp.CSS("#action-cancel")), chromedp.WaitVisible(chromedp.CSS("#job-status.cancelled")))
	shot("5-cancelled-job")

	step("sign out", 30*time.Second, chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#token")))
	shot("6-signed-out")
	step("signed out for good", 30*time.Second, chromedp.Navigate(base+"/jobs"), chromedp.WaitVisible(chromedp.CSS("#token")))
}
