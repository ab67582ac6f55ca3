// Package segment compiles and evaluates the expressions that choose
// contacts (list sends' segments, workflows' when): boolean expressions in
// github.com/expr-lang/expr over one map of values, the contact's
// attributes and fields or an event's data.
//
// An expression sees nothing but that map and expr's pure builtins: no
// methods, no I/O, no side effects. It is compiled once and then run per
// contact; a run-time failure (a missing attribute used as a number) is an
// error for that contact alone.
package segment

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// MaxLength bounds an expression's source, and maxNodes its syntax tree:
// an expression runs once per contact, so its size is work multiplied by
// the list's length.
const (
	MaxLength = 4096
	maxNodes  = 1000
)

// Error is an expression that does not compile, with the 1-based line and
// column where the problem is.
type Error struct {
	Line, Column int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
}

// Options tune compilation. The zero value is the daemon's default.
type Options struct {
	// Now is the clock behind now(); nil means time.Now. Tests and the
	// workflow scheduler inject theirs so a segment and its schedule agree.
	Now func() time.Time
}

// Expr is a compiled expression, safe for concurrent use.
type Expr struct {
	source  string
	program *vm.Program
}

// Compile compiles source. A syntax error, an unknown function or a
// result that cannot be a boolean is an *Error with its position.
func Compile(source string, opts Options) (*Expr, error) {
	if len(source) > MaxLength {
		return nil, &Error{Line: 1, Column: 1, Message: fmt.Sprintf("the expression is %d bytes long; the limit is %d", len(source), MaxLength)}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	calls := &unknownCalls{}
	program, err := expr.Compile(source,
		expr.Env(map[string]any{}),
		expr.AllowUndefinedVariables(),
		expr.AsBool(),
		expr.MaxNodes(maxNodes),
		expr.Function("now", func(...any) (any, error) { return now(), nil }, new(func() time.Time)),
		expr.Patch(calls),
	)
	if err == nil && calls.err != nil {
		err = calls.err
	}
	if err != nil {
		return nil, positioned(source, err)
	}
	return &Expr{source: source, program: program}, nil
}

// String returns the expression's source.
func (e *Expr) String() string { return e.source }

// Match evaluates the expression on values. An error means the expression
// could not be evaluated on these values (a missing attribute compared to
// a number, a string where a boolean is needed).
func (e *Expr) Match(values map[string]any) (bool, error) {
	return result(expr.Run(e.program, values))
}

// Matcher evaluates one expression for one goroutine, reusing its
// machine's stack between runs: a list send evaluates a segment on every
// member, and a fresh machine per member was a fifth of the evaluation.
type Matcher struct {
	e  *Expr
	vm vm.VM
}

// Matcher returns a matcher of e for one goroutine (it is not safe for
// concurrent use; e is).
func (e *Expr) Matcher() *Matcher { return &Matcher{e: e} }

// Match is Expr.Match.
func (m *Matcher) Match(values map[string]any) (bool, error) {
	return result(m.vm.Run(m.e.program, values))
}

func result(out any, err error) (bool, error) {
	if err != nil {
		return false, errors.New(firstLine(err.Error()))
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("the expression gave %T, not true or false", out)
	}
	return b, nil
}

// unknownCalls finds calls of names that are neither expr's builtins nor
// ours. expr compiles them (a variable might hold a function) and fails at
// run time on every contact; refusing them at compile time gives the
// author a position instead of a list of failed contacts.
type unknownCalls struct{ err error }

func (u *unknownCalls) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok || u.err != nil {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || id.Value == "now" || slices.Contains(builtin.Names, id.Value) {
		return
	}
	loc := call.Location()
	u.err = &file.Error{Location: loc, Message: fmt.Sprintf("unknown function %s()", id.Value)}
}

// positioned turns expr's error into an *Error with line and column.
func positioned(source string, err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line == 0 {
			fe = fe.Bind(file.NewSource(source))
		}
		return &Error{Line: fe.Line, Column: fe.Column + 1, Message: fe.Message}
	}
	return &Error{Line: 1, Column: 1, Message: firstLine(err.Error())}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
