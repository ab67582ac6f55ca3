// Package fasttmpl finds the plain shape most templates have — text and
// actions that print one value — so that callers can render it by
// concatenation instead of text/template's reflection, which costs tens of
// microseconds a render on a hot path (a recipient row in ingest, a
// provider body in the sender).
//
// It only splits a parse tree into parts; what a field means and how a
// value is escaped stays with each caller, which keeps its own test that
// the concatenation equals text/template's output byte for byte.
package fasttmpl

import "text/template/parse"

// Part is a piece of a plain template: literal Text when Action is false,
// otherwise an action printing the value at Field (a path such as
// ["Vars", "name"]), through the function Func when it is set. An action
// with a Func and no Field is a call of that function alone, such as
// {{unsubscribe_url}}.
type Part struct {
	Text   string
	Action bool
	Func   string
	Field  []string
}

// Split returns root's parts when every node is text or an action of the
// form {{.F}}, {{.F.G}}, {{fn .F}} or {{fn}} (no variables, pipelines,
// assignments or control structures), and accept takes every action;
// otherwise it returns false and the caller keeps text/template.
func Split(root *parse.ListNode, accept func(Part) bool) ([]Part, bool) {
	if root == nil {
		return nil, false
	}
	parts := make([]Part, 0, len(root.Nodes))
	for _, n := range root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			parts = append(parts, Part{Text: string(n.Text)})
		case *parse.ActionNode:
			p, ok := action(n.Pipe)
			if !ok || !accept(p) {
				return nil, false
			}
			parts = append(parts, p)
		default:
			return nil, false
		}
	}
	return parts, true
}

// action reads {{.F}}, {{fn .F}} or {{fn}}.
func action(pipe *parse.PipeNode) (Part, bool) {
	if pipe == nil || pipe.IsAssign || len(pipe.Decl) > 0 || len(pipe.Cmds) != 1 {
		return Part{}, false
	}
	p := Part{Action: true}
	args := pipe.Cmds[0].Args
	switch len(args) {
	case 1:
		if id, ok := args[0].(*parse.IdentifierNode); ok {
			p.Func = id.Ident
			return p, true
		}
	case 2:
		id, ok := args[0].(*parse.IdentifierNode)
		if !ok {
			return Part{}, false
		}
		p.Func = id.Ident
	default:
		return Part{}, false
	}
	field, ok := args[len(args)-1].(*parse.FieldNode)
	if !ok {
		return Part{}, false
	}
	p.Field = field.Ident
	return p, true
}
