package ingest

import "text/template/parse"

// walkTemplate calls visit on n and on every node below it, in source
// order: the actions, pipelines, commands and arguments of the text and
// of every if, range, with and template call. Finding a template's
// variables and its unsubscribe link read the same tree this way.
func walkTemplate(n parse.Node, visit func(parse.Node)) {
	switch n := n.(type) {
	case nil:
		return
	case *parse.ListNode:
		if n == nil {
			return
		}
		visit(n)
		for _, c := range n.Nodes {
			walkTemplate(c, visit)
		}
	case *parse.PipeNode:
		if n == nil {
			return
		}
		visit(n)
		for _, c := range n.Cmds {
			walkTemplate(c, visit)
		}
	case *parse.ActionNode:
		visit(n)
		walkTemplate(n.Pipe, visit)
	case *parse.CommandNode:
		visit(n)
		for _, a := range n.Args {
			walkTemplate(a, visit)
		}
	case *parse.ChainNode:
		visit(n)
		walkTemplate(n.Node, visit)
	case *parse.IfNode:
		visit(n)
		walkBranch(&n.BranchNode, visit)
	case *parse.RangeNode:
		visit(n)
		walkBranch(&n.BranchNode, visit)
	case *parse.WithNode:
		visit(n)
		walkBranch(&n.BranchNode, visit)
	case *parse.TemplateNode:
		visit(n)
		walkTemplate(n.Pipe, visit)
	default:
		visit(n)
	}
}

func walkBranch(b *parse.BranchNode, visit func(parse.Node)) {
	walkTemplate(b.Pipe, visit)
	walkTemplate(b.List, visit)
	walkTemplate(b.ElseList, visit)
}
