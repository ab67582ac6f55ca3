package ingest

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// segmentNames returns the names a segment expression reads from the
// contact, so that a list send decodes only those attributes of each
// member (most of a dry run's time was decoding attributes nobody reads).
// all is true when the expression may read any name ($env, or an
// expression this walk does not understand): every attribute is then
// decoded. Names of functions and of let variables come out too; decoding
// an attribute the expression does not read costs time, never a result.
// TestSegmentNamesGiveTheSameMatches holds matches on these names equal
// to matches on every attribute.
func segmentNames(src string) (names map[string]bool, all bool) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, true
	}
	v := &nameVisitor{names: map[string]bool{}}
	ast.Walk(&tree.Node, v)
	if v.all {
		return nil, true
	}
	return v.names, false
}

type nameVisitor struct {
	names map[string]bool
	all   bool
}

func (v *nameVisitor) Visit(node *ast.Node) {
	id, ok := (*node).(*ast.IdentifierNode)
	if !ok {
		return
	}
	if id.Value == "$env" || id.Value == "" {
		v.all = true
		return
	}
	v.names[id.Value] = true
}
