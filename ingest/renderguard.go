package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"text/template"
	"text/template/parse"
	"time"
)

// Why renders are guarded: text/template ranges over integers and over
// anything a function returns, so a 40-byte template such as
// {{range 200000}}{{range 200000}}{{end}}{{end}} runs for hours, and
// {{range 10000000}}<49 chars>{{end}} or a chain of replace calls makes
// hundreds of megabytes. A text/template execution cannot be stopped from
// outside, so the template itself is made to stop: every range pipeline is
// rewritten to go through rangeFunc, every {{template}} call through
// stepFunc, the partner's string functions count and bound their results,
// and output goes to a writer that refuses bytes past the channel's limit.
// Each of these reports to the render's guard, which fails the render once
// its step budget, its deadline or its context is passed.

const (
	// rangeFunc and stepFunc are the names the rewritten tree calls. They
	// are ordinary identifiers: a template that calls them itself only
	// counts more steps.
	rangeFunc = "dropgateRange"
	stepFunc  = "dropgateStep"

	// checkEvery is how many steps pass between looks at the clock and the
	// context: often enough to stop within a millisecond or so, rarely
	// enough to cost nothing measurable per step.
	checkEvery = 256

	// smallRange is the longest range over an integer charged at once
	// rather than turn by turn.
	smallRange = 1024
)

// renderBudget bounds the work of one render (one message: subject and
// body together).
type renderBudget struct {
	// steps counts loop turns, function calls and {{template}} calls, plus
	// one per 256 bytes of text a function makes: so one render cannot
	// build more than steps × 256 bytes of text (25 MB by default), in
	// however many variables.
	steps int64
	// timeout is the deadline of one render, for work the steps do not
	// measure well (comparing long texts with eq, escaping in html).
	timeout time.Duration
}

// defaultRenderBudget is what a message template may spend when the config
// says nothing: a message needs a handful of loop turns, not a hundred
// thousand, and a hundred thousand cost well under a tenth of a second.
var defaultRenderBudget = renderBudget{steps: 100_000, timeout: time.Second}

// renderLimitError is a render stopped by a bound; its message is for the
// partner, complete.
type renderLimitError struct {
	msg string
}

func (e *renderLimitError) Error() string { return e.msg }

// guard is the state of one render. An instance of a template (and so its
// guard) is used by one render at a time; see messageTemplate.instance.
type guard struct {
	ctx      context.Context
	deadline time.Time
	steps    int64
	budget   renderBudget
	// maxText bounds any text a function makes: the channel's body limit.
	maxText int
	channel string
	err     error // the first bound passed; sticky for the render
	// unsubURL is what {{unsubscribe_url}} gives in this render: the
	// recipient's link ("" when none can be made).
	unsubURL string
}

// start resets the guard for a new render.
func (g *guard) start(ctx context.Context) {
	g.ctx, g.steps, g.err = ctx, 0, nil
	g.deadline = time.Now().Add(g.budget.timeout)
}

// step spends n steps and returns the render's error once a bound is
// passed.
func (g *guard) step(n int64) error {
	if g.err != nil {
		return g.err
	}
	before := g.steps
	g.steps += n
	if g.steps > g.budget.steps {
		g.err = &renderLimitError{fmt.Sprintf("the template does too much work: one message took more than %d steps (loop turns and function calls); make its loops smaller", g.budget.steps)}
		return g.err
	}
	if before/checkEvery != g.steps/checkEvery {
		if g.ctx != nil && g.ctx.Err() != nil {
			g.err = fmt.Errorf("render stopped: %w", g.ctx.Err())
			return g.err
		}
		if time.Now().After(g.deadline) {
			g.err = &renderLimitError{fmt.Sprintf("the template took longer than %s to fill in for one message; make its loops smaller", g.budget.timeout)}
			return g.err
		}
	}
	return nil
}

// text checks a text a function is about to make, of n bytes, and spends a
// step per 256 bytes of it.
func (g *guard) text(fn string, n int) error {
	if err := g.step(1 + int64(n>>8)); err != nil {
		return err
	}
	if n > g.maxText {
		g.err = &renderLimitError{fmt.Sprintf("%s would make a text of %s, larger than %s, the limit of channel %q", fn, sizeText(n), sizeText(g.maxText), g.channel)}
		return g.err
	}
	return nil
}

// raise stops the template where it is: text/template turns a panic with
// an ExecError into Execute's error. Used where there is no error to return
// (inside a range's iterator).
func (g *guard) raise(err error) {
	panic(template.ExecError{Name: "guard", Err: err})
}

// rangeValue is rangeFunc: it passes a range's value through, counting its
// turns. An integer past smallRange becomes an iterator that spends a step
// per turn (it is the only way to loop long without data), so the loop
// stops at the turn that passes a bound; a smaller integer, a slice, a map
// or a string is charged its length up front and ranged as it is, so the
// range keeps text/template's meaning exactly.
func (g *guard) rangeValue(v reflect.Value) (reflect.Value, error) {
	if err := g.step(1); err != nil {
		return v, err
	}
	for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) && !v.IsNil() {
		v = v.Elem()
	}
	if !v.IsValid() {
		return v, nil
	}
	var n int64
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n = v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n = int64(min(v.Uint(), 1<<62))
	case reflect.Array, reflect.Slice, reflect.Map, reflect.String:
		return v, g.step(int64(v.Len()))
	default:
		return v, nil // text/template reports what it cannot range over
	}
	if n <= smallRange {
		// Charged up front and ranged as it is: an iterator costs about
		// twenty allocations through reflect, and a short loop never runs
		// long between two looks at the clock.
		return v, g.step(max(n, 0))
	}
	var seq iter.Seq[int] = func(yield func(int) bool) {
		for i := int64(0); i < n; i++ {
			if err := g.step(1); err != nil {
				g.raise(err)
			}
			if !yield(int(i)) {
				return
			}
		}
	}
	return reflect.ValueOf(seq), nil
}

// guardFuncs are the functions the rewritten tree calls.
func (g *guard) guardFuncs() template.FuncMap {
	return template.FuncMap{
		rangeFunc: g.rangeValue,
		stepFunc: func(v reflect.Value) (reflect.Value, error) {
			return v, g.step(1)
		},
	}
}

// limitedBuffer is the writer a render writes to: past limit bytes it
// fails, which stops text/template at once.
type limitedBuffer struct {
	buf   *bytes.Buffer
	limit int
	what  string // subject | body
	g     *guard
}

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if w.g.err != nil {
		return 0, w.g.err
	}
	if w.buf.Len()+len(p) > w.limit {
		w.g.err = &renderLimitError{fmt.Sprintf("the rendered %s is larger than %s, the limit of channel %q", w.what, sizeText(w.limit), w.g.channel)}
		return 0, w.g.err
	}
	return w.buf.Write(p)
}

// sizeText writes a byte count as people read it: 1 MiB, 4 KiB, 1000 bytes.
func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// guardTree rewrites a parsed tree so that every range pipeline ends in
// rangeFunc and every {{template}} call passes its data through stepFunc.
// It must run before the first Execute (html/template escapes the tree
// then, and never looks at range pipelines or template calls' data).
func guardTree(tree *parse.Tree) {
	if tree == nil || tree.Root == nil {
		return
	}
	walkTemplate(tree.Root, func(n parse.Node) {
		switch n := n.(type) {
		case *parse.RangeNode:
			n.Pipe.Cmds = append(n.Pipe.Cmds, guardCommand(tree, n.Pipe.Position(), rangeFunc))
		case *parse.TemplateNode:
			if n.Pipe == nil {
				// {{template "x"}} passes no data: pass it (dropgateStep
				// nil), which is the same nothing, counted.
				cmd := guardCommand(tree, n.Position(), stepFunc)
				cmd.Args = append(cmd.Args, &parse.NilNode{NodeType: parse.NodeNil, Pos: n.Position()})
				n.Pipe = &parse.PipeNode{NodeType: parse.NodePipe, Pos: n.Position(), Line: n.Line, Cmds: []*parse.CommandNode{cmd}}
				return
			}
			n.Pipe.Cmds = append(n.Pipe.Cmds, guardCommand(tree, n.Position(), stepFunc))
		}
	})
}

// guardCommand is the pipeline stage "| name".
func guardCommand(tree *parse.Tree, pos parse.Pos, name string) *parse.CommandNode {
	id := parse.NewIdentifier(name).SetTree(tree).SetPos(pos)
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{id}}
}

// checkRangeLiterals finds, for the upload check, a loop over an integer
// literal whose nesting repeats a body more times than a whole render may
// take steps: {{range 1000}}{{range 1000}} can never render, so it is
// better said at once, with the place, than on every row. It returns the
// literal and its value, or nil.
func checkRangeLiterals(tree *parse.Tree, steps int64) (parse.Node, int64) {
	if tree == nil || tree.Root == nil {
		return nil, 0
	}
	var bad parse.Node
	var badTurns int64
	var walk func(n parse.Node, turns int64)
	walk = func(n parse.Node, turns int64) {
		if bad != nil {
			return
		}
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c, turns)
			}
		case *parse.IfNode:
			walk(n.List, turns)
			walk(n.ElseList, turns)
		case *parse.WithNode:
			walk(n.List, turns)
			walk(n.ElseList, turns)
		case *parse.RangeNode:
			inner := turns
			if c := n.Pipe.Cmds; len(c) >= 1 && len(c[0].Args) == 1 {
				if num, ok := c[0].Args[0].(*parse.NumberNode); ok && num.IsInt {
					k := max(num.Int64, 1)
					if k > steps || inner > steps/k {
						bad, badTurns = num, k
						return
					}
					inner *= k
				}
			}
			walk(n.List, inner)
			walk(n.ElseList, turns)
		}
	}
	walk(tree.Root, 1)
	return bad, badTurns
}

// isCancel reports whether a render failed because its context ended (the
// daemon is stopping), not because of the template.
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// renderStop is what ends a file's read when a row's render failed for a
// reason that is not the row's: the daemon stopping (ctx's error, so the
// file is left for the next start), or the template passing a bound. A
// template past its bounds on one row usually is on every row, and each
// try spends the whole budget, so the file stops at the first, as a
// file-level error on that row's line. Other render errors (a bad date in
// this row) are the row's, and nil is returned.
func renderStop(ctx context.Context, t *messageTemplate, line int, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var limit *renderLimitError
	if !errors.As(err, &limit) {
		return nil
	}
	return &fileLevelError{Line: line, Msg: fmt.Sprintf("the template %q cannot be filled in for the row on line %d: %s; nothing was queued. Fix the template (upload templates/%s.tmpl again), or the row, then upload this file again",
		t.name, line, limit.msg, t.name)}
}

// findRecursion returns a {{template}} call that leads back to a template
// on its own call path, or nil. Recursion does nothing a message needs,
// and each level of it holds a few KiB of stack, so a budget of steps
// could still reach a deep and heavy stack: it is refused at upload.
func findRecursion(trees []*parse.Tree) *parse.TemplateNode {
	byName := map[string]*parse.Tree{}
	for _, t := range trees {
		byName[t.Name] = t
	}
	calls := func(t *parse.Tree) []*parse.TemplateNode {
		var out []*parse.TemplateNode
		if t != nil {
			walkTemplate(t.Root, func(n parse.Node) {
				if call, ok := n.(*parse.TemplateNode); ok {
					out = append(out, call)
				}
			})
		}
		return out
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var visit func(name string) *parse.TemplateNode
	visit = func(name string) *parse.TemplateNode {
		state[name] = onPath
		for _, c := range calls(byName[name]) {
			switch state[c.Name] {
			case onPath:
				return c
			case unseen:
				if bad := visit(c.Name); bad != nil {
					return bad
				}
			}
		}
		state[name] = done
		return nil
	}
	for _, t := range trees {
		if state[t.Name] == unseen {
			if bad := visit(t.Name); bad != nil {
				return bad
			}
		}
	}
	return nil
}
