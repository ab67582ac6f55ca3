package ingest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/dropgate/dropgate/store"
)

// maxTemplateBytes bounds an uploaded template file.
const maxTemplateBytes = 1 << 20

// templateNameRe is what a template name may look like: it is also the name
// of an inbox folder.
var templateNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ingestTemplate reads templates/<name>.tmpl. A good template becomes a new
// version in the store (unless it is byte for byte the latest one); a bad
// one is reported in reports/<name>.tmpl.errors.txt and the last good
// version stays in use. The file stays in templates/ for the partner to see.
func (in *Ingester) ingestTemplate(ctx context.Context, p *partner, rel string) error {
	abs := filepath.Join(p.home, filepath.FromSlash(rel))
	base := filepath.Base(rel)
	log := in.log.With("partner", p.cfg.Name, "template", base)
	report := reportPath(p, rel, templateErrorsSuffix)
	name, ok := strings.CutSuffix(base, ".tmpl")
	if !ok {
		// Often a template saved on a system that hides extensions
		// (welcome.tmpl.txt): tell the partner rather than ignore it.
		return in.rejectTemplate(ctx, p, rel, report, "", &templateError{Line: 1, Col: 1,
			Msg: fmt.Sprintf("templates/ takes template files named <name>.tmpl; rename %s to end in .tmpl (check that your computer does not hide or add an extension)", base)})
	}
	src, err := readSmallFile(abs, maxTemplateBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if errors.Is(err, errTooBig) {
		return in.rejectTemplate(ctx, p, rel, report, "", &templateError{Line: 1, Col: 1,
			Msg: fmt.Sprintf("the file is larger than %d bytes; a template should be much smaller", maxTemplateBytes)})
	}
	if err != nil {
		return err
	}
	if !templateNameRe.MatchString(name) {
		return in.rejectTemplate(ctx, p, rel, report, src, &templateError{Line: 1, Col: 1,
			Msg: fmt.Sprintf("%q is not a usable template name: use letters, digits, '-', '_' or '.', starting with a letter or digit", name)})
	}
	parsed, err := parseTemplateBudget(name, src, p.channels, in.budget)
	if err == nil {
		err = in.bindLinks(parsed)
	}
	if err != nil {
		var te *templateError
		if !errors.As(err, &te) {
			return err
		}
		return in.rejectTemplate(ctx, p, rel, report, src, te)
	}
	if err := removeReport(report); err != nil {
		return err
	}
	latest, err := in.st.LatestTemplate(ctx, p.cfg.Name, name)
	if err == nil && latest.Source == src {
		return nil // the same bytes again: the latest version stands
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("cannot read template %s: %w", name, err)
	}
	saved, err := in.st.SaveTemplate(ctx, store.Template{Partner: p.cfg.Name, Name: name, Channel: parsed.channel,
		Subject: parsedSubject(src), Format: parsed.format, Sender: parsed.sender, Body: templateBody(src), Source: src})
	if err != nil {
		return fmt.Errorf("cannot save template %s: %w", name, err)
	}
	parsed.version = saved.Version
	in.mu.Lock()
	in.templates[saved.ID] = parsed
	in.mu.Unlock()
	log.Info("template saved", "version", saved.Version, "channel", parsed.channel)
	return nil
}

// rejectTemplate writes reports/<name>.tmpl.errors.txt for a bad template.
func (in *Ingester) rejectTemplate(ctx context.Context, p *partner, rel, report, src string, te *templateError) error {
	name := strings.TrimSuffix(filepath.Base(rel), ".tmpl")
	keep := "There is no earlier version of this template, so files that use it are rejected until it is fixed."
	if latest, err := in.st.LatestTemplate(ctx, p.cfg.Name, name); err == nil {
		keep = fmt.Sprintf("Version %d of this template, uploaded %s, stays in use.", latest.Version, latest.CreatedAt.Format("2006-01-02 15:04 MST"))
	}
	in.log.Info("template rejected", "partner", p.cfg.Name, "template", rel, "problem", te.Error())
	if err := in.recordRejectedTemplate(ctx, p, rel, src, te); err != nil {
		return err
	}
	return writeAtomic(report, func(w *bufio.Writer) error {
		fmt.Fprintf(w, "%s, line %d, column %d: %s\n\n", rel, te.Line, te.Col, te.Msg)
		fmt.Fprintf(w, "This upload was not accepted. %s\nFix the file and upload it again.\n", keep)
		return nil
	})
}

// recordRejectedTemplate shows a rejected template to the admin as a
// rejected file (GET /api/v1/files?status=rejected), with the line and,
// as its column, the character position. Templates stay in templates/ and
// are read again at every start: the same rejected bytes are recorded once.
func (in *Ingester) recordRejectedTemplate(ctx context.Context, p *partner, rel, src string, te *templateError) error {
	sum := sha256.Sum256([]byte(src))
	sha := hex.EncodeToString(sum[:])
	if last, err := in.st.LastFileNamed(ctx, p.cfg.Name, rel); err == nil && last.Status == store.FileRejected && last.SHA256 == sha {
		return nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	id, err := in.st.CreateFile(ctx, store.File{Partner: p.cfg.Name, Name: rel, Size: int64(len(src)), SHA256: sha})
	if err != nil {
		return err
	}
	return in.st.RejectFile(in.claimFence(ctx, p, rel), id, "template rejected: "+te.Msg, 0,
		[]store.FileError{{Line: te.Line, Column: strconv.Itoa(te.Col), Error: te.Msg}})
}

// parsedSubject and templateBody split a template source that parsed for
// the store's columns, which the API shows.
func parsedSubject(src string) string {
	for _, line := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "---" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "subject") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func templateBody(src string) string {
	lines := strings.SplitAfter(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	for i, line := range lines {
		if strings.TrimSpace(line) == "---" {
			return strings.TrimRight(strings.Join(lines[i+1:], ""), " \t\n")
		}
	}
	return ""
}

var errTooBig = errors.New("file too big")

// readSmallFile reads a whole file of at most limit bytes.
func readSmallFile(path string, limit int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > limit {
		return "", errTooBig
	}
	return string(b), nil
}

// template returns the latest version of a partner's template, compiled, or
// store.ErrNotFound. A stored version that no longer parses (its channel was
// removed from the config) is reported as an error.
func (in *Ingester) template(ctx context.Context, p *partner, name string) (*messageTemplate, error) {
	t, err := in.st.LatestTemplate(ctx, p.cfg.Name, name)
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	mt := in.templates[t.ID]
	in.mu.Unlock()
	if mt != nil {
		return mt, nil
	}
	mt, err = parseTemplateBudget(name, t.Source, p.channels, in.budget)
	if err == nil {
		err = in.bindLinks(mt)
	}
	if err != nil {
		return nil, fmt.Errorf("version %d of template %s no longer fits the configuration: %w", t.Version, name, err)
	}
	mt.version = t.Version
	in.mu.Lock()
	in.templates[t.ID] = mt
	in.mu.Unlock()
	return mt, nil
}
