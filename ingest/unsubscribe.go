package ingest

import (
	"errors"
	"text/template/parse"
)

// unsubscribeFunc is the template function that places the recipient's
// one-click unsubscribe link: {{unsubscribe_url}}.
const unsubscribeFunc = "unsubscribe_url"

// errNoUnsubscribeURL is a render of {{unsubscribe_url}} without a link:
// no public_url, or no recipient to make it for.
var errNoUnsubscribeURL = errors.New("the unsubscribe link cannot be made for this message (no recipient, or no [admin] public_url)")

// testUnsubscribeURL stands for the link in the test render of a template
// at upload: a link of the length of a real one, so the bounds are tried.
const testUnsubscribeURL = "https://unsubscribe.invalid/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// noPublicURL is the refusal of a template that places the link while
// the server has no public_url to make it with.
const noPublicURL = "{{unsubscribe_url}} needs the server's public address, and [admin] public_url is not set; ask the administrator to set it, or remove the link from the template"

// findUnsubscribe returns the first use of {{unsubscribe_url}} in trees,
// or nil.
func findUnsubscribe(trees []*parse.Tree) parse.Node {
	var found parse.Node
	for _, t := range trees {
		walkTemplate(t.Root, func(n parse.Node) {
			if id, ok := n.(*parse.IdentifierNode); ok && found == nil && id.Ident == unsubscribeFunc {
				found = n
			}
		})
	}
	return found
}

// bindLinks gives a parsed template the link maker of the server, or
// refuses it, at the position of its first {{unsubscribe_url}}, when the
// server has none. Every path that accepts a template (a drop, the API,
// a stored version read again) calls it.
func (in *Ingester) bindLinks(t *messageTemplate) error {
	if t.unsubAt == nil {
		return nil
	}
	if in.unsubscribeURL == nil {
		return &templateError{Line: t.unsubAt.Line, Col: t.unsubAt.Col, Msg: noPublicURL}
	}
	t.links = in.unsubscribeURL
	return nil
}
