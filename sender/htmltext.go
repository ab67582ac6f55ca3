package sender

import (
	"html"
	"regexp"
	"strings"
)

var (
	// Elements whose content is not text a reader sees.
	htmlHidden = regexp.MustCompile(`(?is)<(script|style|head|title)\b.*?</(script|style|head|title)\s*>|<!--.*?-->`)
	// Tags that end a line or a block.
	htmlBreak = regexp.MustCompile(`(?i)<br\s*/?>|</(p|div|h[1-6]|li|tr|table|blockquote|pre)\s*>|<(hr)\b[^>]*>`)
	htmlItem  = regexp.MustCompile(`(?i)<li\b[^>]*>`)
	htmlTag   = regexp.MustCompile(`(?s)<[^>]*>`)
	blankRuns = regexp.MustCompile(`\n{3,}`)
	spaceRuns = regexp.MustCompile(`[ \t\r\f\v]+`)
)

// htmlToText is the plain-text alternative of an HTML email: tags stripped,
// blocks and line breaks kept as lines, entities decoded. It is meant to be
// readable, not a faithful rendering.
func htmlToText(s string) string {
	s = htmlHidden.ReplaceAllString(s, "")
	s = strings.NewReplacer("\r\n", " ", "\n", " ").Replace(s) // in HTML a newline is a space
	s = htmlItem.ReplaceAllString(s, "- ")
	s = htmlBreak.ReplaceAllString(s, "\n")
	s = htmlTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(spaceRuns.ReplaceAllString(l, " "))
	}
	s = strings.Join(lines, "\n")
	s = blankRuns.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s) + "\n"
}
