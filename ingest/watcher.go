package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/dropgate/dropgate/config"
	"github.com/dropgate/dropgate/store"
)

// renameQuiet is how long a file renamed in from a temporary name in the
// same folder must stay unchanged before it is taken. The rename is the
// writer's "done" signal; the short wait only catches the rare writer that
// keeps writing after its rename.
const renameQuiet = 50 * time.Millisecond

// pendingFile is a file seen changing that is not yet known to be complete.
type pendingFile struct {
	item  workItem
	abs   string
	size  int64
	mtime time.Time
	since time.Time     // when size and mtime were last seen to change
	quiet time.Duration // how long they must stay the same
	how   arrival       // how it came, as far as the events tell
}

// watchLoop follows the watcher's events and the servers' signals until ctx
// ends. Files written in place are taken once their size and mtime have
// been stable for the quiet period; a temporary name renamed to a real one
// is taken almost at once, and a server's signal at once.
func (in *Ingester) watchLoop(ctx context.Context) error {
	pending := map[workItem]*pendingFile{}
	in.kicked = map[workItem]templateSeen{}
	in.uploaded = map[workItem]os.FileInfo{}
	in.rescan(ctx, pending)
	select {
	case <-in.scanned:
	default:
		close(in.scanned)
	}
	tick := time.NewTicker(min(max(in.quiet/4, 10*time.Millisecond), 250*time.Millisecond))
	defer tick.Stop()
	var last fsnotify.Event
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-in.wake:
			for _, c := range in.takeCompletions() {
				in.takeSignal(ctx, c, pending)
			}
		case ev, ok := <-in.watcher.Events:
			if !ok {
				return nil
			}
			in.handleEvent(ctx, ev, last, pending)
			last = ev
		case err, ok := <-in.watcher.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				in.log.Warn("file watcher overflowed; rescanning every inbox")
				in.rescan(ctx, pending)
				continue
			}
			in.log.Error("file watcher error", "err", err)
		case <-tick.C:
			in.checkPending(ctx, pending)
		}
	}
}

// takeSignal queues a file an embedded server reports in place, unless it
// must wait: a list whose template is still settling, or a file whose
// earlier version is still being read. It then waits in pending, taken at
// the next tick that allows it.
func (in *Ingester) takeSignal(ctx context.Context, c completion, pending map[workItem]*pendingFile) {
	p := in.partners[c.item.partner]
	abs := filepath.Join(p.home, filepath.FromSlash(c.item.rel))
	if c.how == arrivedUpload {
		if fi, err := os.Stat(abs); err == nil {
			in.uploaded[c.item] = fi
		}
	}
	if !in.waitsForTemplate(ctx, c.item, pending) && in.push(c.item, c.how) {
		delete(pending, c.item)
		return
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return
	}
	pending[c.item] = &pendingFile{item: c.item, abs: abs, size: fi.Size(), mtime: fi.ModTime(), since: in.clock(), how: c.how}
}

// push queues a file and records how it came. It returns false when the
// file is already queued or being read.
func (in *Ingester) push(it workItem, how arrival) bool {
	in.setArrival(it, how)
	return in.queue.push(it)
}

// handleEvent reacts to one event; prev is the event before it.
func (in *Ingester) handleEvent(ctx context.Context, ev, prev fsnotify.Event, pending map[workItem]*pendingFile) {
	in.log.Debug("file event", "event", ev.String())
	p, rel, ok := in.locate(ev.Name)
	if !ok {
		return
	}
	item := workItem{partner: p.cfg.Name, rel: rel}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		delete(pending, item)
		delete(in.uploaded, item)
		if p.watched[ev.Name] {
			delete(p.watched, ev.Name)
			p.capWarned = false
		}
		if ev.Has(fsnotify.Rename) {
			// A watched subfolder renamed away: fsnotify keeps no watch on it.
			in.watcher.Remove(ev.Name)
		}
		return
	}
	if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Chmod) {
		return
	}
	fi, err := os.Stat(ev.Name)
	if err != nil {
		delete(pending, item)
		return
	}
	if fi.IsDir() {
		if ev.Has(fsnotify.Create) && (isTemplateFolder(rel) || isListFolder(rel)) {
			in.watchFolder(ctx, p, ev.Name, pending)
		}
		return
	}
	if config.IsTempName(rel) || !watchedFile(rel) {
		return
	}
	// An embedded server's upload moved in from its uploads folder, seen
	// after the server's own signal: still an upload, not a client's rename.
	up, fromUpload := in.uploaded[item]
	fromUpload = fromUpload && ev.Has(fsnotify.Create) && os.SameFile(up, fi)
	if fromUpload {
		delete(in.uploaded, item)
	}
	now := in.clock()
	pf, seen := pending[item]
	if !seen {
		pf = &pendingFile{item: item, abs: ev.Name, quiet: in.quiet}
		pending[item] = pf
	}
	pf.size, pf.mtime, pf.since = fi.Size(), fi.ModTime(), now
	switch {
	case ev.Has(fsnotify.Create) && prev.Has(fsnotify.Rename) && config.IsTempName(prev.Name) &&
		filepath.Dir(prev.Name) == filepath.Dir(ev.Name):
		// inotify reports a rename as the old name's Rename immediately
		// followed by the new name's Create: a temporary name renamed to
		// its real one in the same folder, the usual "upload done" signal.
		// From an embedded server's hidden name it is an upload closing,
		// which the server reports itself, with what it knows.
		pf.quiet = min(renameQuiet, in.quiet)
		pf.how = arrivedRenamed
		if strings.HasPrefix(filepath.Base(prev.Name), config.UploadTempPrefix) {
			pf.how = arrivedUpload
		}
	case fromUpload:
		pf.quiet = min(renameQuiet, in.quiet)
		pf.how = arrivedUpload
	case ev.Has(fsnotify.Create):
		// Created, or moved in from a folder nobody watches (inotify
		// reports both alike): a write that follows tells them apart.
		pf.quiet = in.quiet
		pf.how = arrivedRenamed
	case ev.Has(fsnotify.Write):
		pf.quiet = in.quiet
		pf.how = arrivedWritten
	}
}

// checkPending queues the files whose size and mtime stayed the same for
// their quiet period, templates first. A file seen still changing counts
// as written in place.
//
// A list in inbox/<name>/ waits while templates/<name>.tmpl is still
// settling or being read and no version of it is stored yet: a template
// written in place waits out the quiet period, and a list that arrives
// meanwhile (renamed in, uploaded) would otherwise be read first and
// rejected for naming a template that does not exist. With a version
// stored, the list goes on with it, as it would have a moment earlier.
func (in *Ingester) checkPending(ctx context.Context, pending map[workItem]*pendingFile) {
	now := in.clock()
	for _, templates := range []bool{true, false} {
		for item, pf := range pending {
			if isTemplateItem(item) != templates {
				continue
			}
			fi, err := os.Stat(pf.abs)
			if err != nil || fi.IsDir() {
				delete(pending, item)
				continue
			}
			if fi.Size() != pf.size || !fi.ModTime().Equal(pf.mtime) {
				pf.size, pf.mtime, pf.since = fi.Size(), fi.ModTime(), now
				pf.quiet = in.quiet
				pf.how = arrivedWritten
				continue
			}
			if now.Sub(pf.since) < pf.quiet || !templates && in.waitsForTemplate(ctx, item, pending) {
				continue
			}
			// A file still being read stays pending: its new version is
			// taken once the old one is done.
			if in.push(item, pf.how) || !in.queue.busy(item) {
				delete(pending, item)
			}
		}
	}
}

// waitsForTemplate reports whether a list in inbox/<name>/ must wait for
// templates/<name>.tmpl, which is settling or queued and has no stored
// version.
//
// A template on disk that is neither is about to be seen: a server's signal
// for the list can come before the watcher's event for a template written a
// moment earlier. It is then taken as a scan would take it, once per
// version on disk (a template that fails to parse must not hold its lists
// for ever).
func (in *Ingester) waitsForTemplate(ctx context.Context, item workItem, pending map[workItem]*pendingFile) bool {
	parts := strings.Split(item.rel, "/")
	if len(parts) != 3 || parts[0] != config.InboxDir {
		return false
	}
	t := workItem{partner: item.partner, rel: config.TemplatesDir + "/" + parts[1] + ".tmpl"}
	_, settling := pending[t]
	if !settling && !in.queue.busy(t) {
		p := in.partners[item.partner]
		abs := filepath.Join(p.home, filepath.FromSlash(t.rel))
		fi, err := os.Stat(abs)
		if err != nil || !fi.Mode().IsRegular() {
			return false
		}
		seen := templateSeen{fi.Size(), fi.ModTime()}
		if in.kicked[t] == seen {
			return false
		}
		if _, err := in.st.LatestTemplate(ctx, item.partner, parts[1]); !errors.Is(err, store.ErrNotFound) {
			return false
		}
		in.kicked[t] = seen
		pending[t] = &pendingFile{item: t, abs: abs, size: fi.Size(), mtime: fi.ModTime(), since: fi.ModTime(), quiet: in.quiet}
		return true
	}
	_, err := in.st.LatestTemplate(ctx, item.partner, parts[1])
	return errors.Is(err, store.ErrNotFound)
}

// templateSeen is a template file's size and mtime when a list's wait
// took it.
type templateSeen struct {
	size  int64
	mtime time.Time
}

// isTemplateItem reports whether the file is in the partner's templates/.
func isTemplateItem(it workItem) bool {
	return strings.HasPrefix(it.rel, config.TemplatesDir+"/")
}

// rescan looks at every inbox and template folder: files found there were
// dropped while nobody watched (before start, or lost in an overflow).
// Templates go first, so that the recipient files that use them find them.
// A file unchanged for the quiet period is queued at once; a younger one
// waits like any file seen changing.
func (in *Ingester) rescan(ctx context.Context, pending map[workItem]*pendingFile) {
	names := make([]string, 0, len(in.partners))
	for name := range in.partners {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := in.partners[name]
		in.scanFolder(ctx, p, filepath.Join(p.home, config.TemplatesDir), pending)
		in.scanFolder(ctx, p, filepath.Join(p.home, config.SuppressDir), pending)
		in.scanFolder(ctx, p, filepath.Join(p.home, config.EventsDir), pending)
		in.scanFolder(ctx, p, filepath.Join(p.home, config.SendsDir), pending)
	}
	for _, name := range names {
		p := in.partners[name]
		for _, top := range []string{config.InboxDir, config.ListsDir} {
			dir := filepath.Join(p.home, top)
			entries, err := os.ReadDir(dir)
			if err != nil {
				in.log.Error("cannot read folder", "partner", name, "folder", top, "err", err)
				continue
			}
			for _, e := range entries {
				if e.IsDir() && !config.IsTempName(e.Name()) {
					in.watchFolder(ctx, p, filepath.Join(dir, e.Name()), pending)
				}
			}
			if top == config.InboxDir {
				in.scanFolder(ctx, p, dir, pending)
			}
		}
	}
}

// watchFolder starts watching a template folder in inbox/ or a list folder
// in lists/, then scans it:
// files written into it before the watch began give no event. Past the
// partner's max_folders no watch is added (each costs the kernel memory,
// and the limit on watches is shared by every partner); that is logged once.
func (in *Ingester) watchFolder(ctx context.Context, p *partner, dir string, pending map[workItem]*pendingFile) {
	if !p.watched[dir] {
		if len(p.watched) >= p.cfg.MaxFolders {
			if !p.capWarned {
				p.capWarned = true
				in.log.Warn("partner has more folders in inbox/ and lists/ than max_folders allows; files in the folders past it are not watched",
					"partner", p.cfg.Name, "max_folders", p.cfg.MaxFolders, "folder", dir)
			}
			return
		}
		if err := in.watcher.Add(dir); err != nil {
			in.log.Error("cannot watch folder", "partner", p.cfg.Name, "folder", dir, "err", err)
		} else {
			p.watched[dir] = true
		}
	}
	in.scanFolder(ctx, p, dir, pending)
}

// scanFolder considers every file of one folder.
func (in *Ingester) scanFolder(ctx context.Context, p *partner, dir string, pending map[workItem]*pendingFile) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		in.log.Error("cannot read folder", "partner", p.cfg.Name, "folder", dir, "err", err)
		return
	}
	now := in.clock()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		abs := filepath.Join(dir, e.Name())
		_, rel, ok := in.locate(abs)
		if !ok || config.IsTempName(rel) || !watchedFile(rel) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		item := workItem{partner: p.cfg.Name, rel: rel}
		if in.queue.busy(item) {
			continue
		}
		if now.Sub(fi.ModTime()) >= in.quiet && !in.waitsForTemplate(ctx, item, pending) {
			delete(pending, item)
			in.push(item, arrivedUnknown)
			continue
		}
		if _, seen := pending[item]; !seen {
			pending[item] = &pendingFile{item: item, abs: abs, size: fi.Size(), mtime: fi.ModTime(), since: now, quiet: in.quiet}
		}
	}
}

// locate maps an absolute path to its partner and its path in the home.
func (in *Ingester) locate(abs string) (*partner, string, bool) {
	rel, err := filepath.Rel(in.root, abs)
	if err != nil {
		return nil, "", false
	}
	name, rest, ok := strings.Cut(filepath.ToSlash(rel), "/")
	if !ok {
		return nil, "", false
	}
	p, ok := in.partners[name]
	if !ok {
		return nil, "", false
	}
	return p, rest, true
}

// isTemplateFolder reports whether rel is inbox/<template>.
func isTemplateFolder(rel string) bool {
	parts := strings.Split(rel, "/")
	return len(parts) == 2 && parts[0] == config.InboxDir && !config.IsTempName(parts[1])
}

// isListFolder reports whether rel is lists/<list>.
func isListFolder(rel string) bool {
	parts := strings.Split(rel, "/")
	return len(parts) == 2 && parts[0] == config.ListsDir && !config.IsTempName(parts[1])
}

// watchedFile reports whether rel is where ingest takes files from:
// inbox/<file>, inbox/<template>/<file>, templates/<file>, suppress/<file>
// or lists/<list>/<file>.
func watchedFile(rel string) bool {
	parts := strings.Split(rel, "/")
	switch {
	case len(parts) == 2 && (parts[0] == config.InboxDir || parts[0] == config.TemplatesDir || parts[0] == config.SuppressDir || parts[0] == config.EventsDir || parts[0] == config.SendsDir):
		return true
	case len(parts) == 3 && (parts[0] == config.InboxDir || parts[0] == config.ListsDir) && !config.IsTempName(parts[1]):
		return true
	}
	return false
}

// cleanRel checks a home-relative path from a server and returns it in the
// watcher's form.
func cleanRel(rel string) (string, bool) {
	rel = strings.TrimPrefix(filepath.ToSlash(filepath.Clean("/"+rel)), "/")
	if rel == "" || strings.Contains(rel, "..") || !watchedFile(rel) {
		return "", false
	}
	return rel, true
}
