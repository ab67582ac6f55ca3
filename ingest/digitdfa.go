package ingest

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// digitPattern is a regexp compiled for whole-string matches over ASCII
// digits: its compiled program, from which each digitMatcher builds its own
// DFA, and the regexp itself, the fallback, compiled only if a matcher
// needs it (none does unless its budget is spent: every region's rules
// take 8 MB of heap so, 16.5 MB with every fallback compiled). It is
// read-only, shared by every goroutine.
type digitPattern struct {
	re   func() *regexp.Regexp // "^(?:pattern)$", compiled on first use
	prog *syntax.Prog          // nil: always the fallback
}

// compileDigitPattern compiles pattern for whole-string matches.
func compileDigitPattern(pattern string) *digitPattern {
	p := &digitPattern{re: sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^(?:" + pattern + ")$") })}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		p.re() // the pattern's own error, as regexp.MustCompile gives it
		return p
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return p
	}
	for _, in := range prog.Inst {
		if in.Op == syntax.InstEmptyWidth && syntax.EmptyOp(in.Arg)&^(syntax.EmptyBeginText|syntax.EmptyBeginLine|syntax.EmptyEndText|syntax.EmptyEndLine) != 0 {
			return p // word boundaries: not in phone metadata, left to the regexp
		}
	}
	p.prog = prog
	return p
}

// dfaBudget is how many more DFA states the matchers sharing it may build.
// A phone normalizer gives one to all its matchers, so that its memory
// stays bounded whatever numbers a file holds (see maxPhoneDFAStates).
type dfaBudget struct{ left int }

// digitMatcher decides whether a string of ASCII digits matches a
// digitPattern in full, the way regexp.MatchString on "^(?:pattern)$" does,
// with a DFA over the ten digits that it builds lazily from the pattern's
// compiled program: after the first few numbers it costs one table lookup a
// digit, where the regexp ran its backtracker or one-pass matcher on every
// number (1.6 µs a row of a 1M-row file, the largest cost of the file's
// reader; ingest/BENCHMARKS.md). A pattern it cannot handle (an assertion
// other than ^ and $) and a DFA whose budget is spent fall back to the
// regexp. It is used by one goroutine.
type digitMatcher struct {
	p      *digitPattern
	budget *dfaBudget
	states []dfaState // 0 is the dead state: every digit leads back to it
	index  map[string]int32
	start  int32
}

// maxDFAStates bounds a lone matcher's memory (about 150 bytes a state with
// its index entry); phone patterns need a few hundred.
const maxDFAStates = 20000

// dfaState is a set of program positions after some digits: where each of
// the ten digits leads (-1: not built yet) and whether the input may end
// here.
type dfaState struct {
	pcs    []uint32
	next   [10]int32
	accept bool
}

// newDigitMatcher compiles pattern for whole-string matches, with a budget
// of its own.
func newDigitMatcher(pattern string) *digitMatcher {
	return compileDigitPattern(pattern).matcher(&dfaBudget{left: maxDFAStates})
}

// matcher is a matcher of p with a DFA of its own, built lazily within
// budget.
func (p *digitPattern) matcher(budget *dfaBudget) *digitMatcher {
	m := &digitMatcher{p: p, budget: budget}
	if p.prog != nil {
		m.states = []dfaState{{}}
		m.index = map[string]int32{}
		m.start = m.state(m.closure([]uint32{uint32(p.prog.Start)}, true))
	}
	return m
}

// MatchString reports whether s, ASCII digits only, matches in full.
func (m *digitMatcher) MatchString(s string) bool { return matchDigits(m, s) }

// match is MatchString for bytes.
func (m *digitMatcher) match(b []byte) bool { return matchDigits(m, b) }

func matchDigits[T string | []byte](m *digitMatcher, s T) bool {
	if m.p.prog == nil {
		return m.p.re().MatchString(string(s))
	}
	st := m.start
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return m.p.re().MatchString(string(s))
		}
		next := m.states[st].next[d]
		if next < 0 {
			if next = m.step(st, d); next < 0 {
				return m.p.re().MatchString(string(s))
			}
		}
		if next == 0 {
			return false
		}
		st = next
	}
	return m.states[st].accept
}

// step builds where digit d leads from state st, or returns -1 when the
// budget is spent.
func (m *digitMatcher) step(st int32, d byte) int32 {
	r := rune('0' + d)
	var moved []uint32
	for _, pc := range m.states[st].pcs {
		if in := &m.p.prog.Inst[pc]; in.Op >= syntax.InstRune && in.Op <= syntax.InstRuneAnyNotNL && in.MatchRune(r) {
			moved = append(moved, in.Out)
		}
	}
	next := m.state(m.closure(moved, false))
	if next >= 0 {
		m.states[st].next[d] = next
	}
	return next
}

// closure follows the empty transitions from pcs and keeps the positions
// that consume a digit; atStart is the start of the input (where ^ holds).
// It also reports whether a match is reachable at the end of the input.
func (m *digitMatcher) closure(pcs []uint32, atStart bool) ([]uint32, bool) {
	seen := map[uint32]bool{}
	var out []uint32
	accept := false
	var walk func(pc uint32, atEnd bool)
	walk = func(pc uint32, atEnd bool) {
		key := pc << 1
		if atEnd {
			key |= 1
		}
		if seen[key] {
			return
		}
		seen[key] = true
		in := &m.p.prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			walk(in.Out, atEnd)
			walk(in.Arg, atEnd)
		case syntax.InstCapture, syntax.InstNop:
			walk(in.Out, atEnd)
		case syntax.InstEmptyWidth:
			op := syntax.EmptyOp(in.Arg)
			if op&(syntax.EmptyBeginText|syntax.EmptyBeginLine) != 0 && !atStart {
				return
			}
			if op&(syntax.EmptyEndText|syntax.EmptyEndLine) != 0 {
				// Holds only at the end: followed for acceptance alone.
				walk(in.Out, true)
				return
			}
			walk(in.Out, atEnd)
		case syntax.InstMatch:
			accept = true
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			if !atEnd {
				out = append(out, pc)
			}
		}
	}
	for _, pc := range pcs {
		walk(pc, false)
	}
	slices.Sort(out)
	return slices.Compact(out), accept
}

// state returns the state of a closure, adding it when new, or -1 when a
// new state would overrun the budget. The start state is always added.
func (m *digitMatcher) state(pcs []uint32, accept bool) int32 {
	if len(pcs) == 0 && !accept {
		return 0
	}
	var b strings.Builder
	for _, pc := range pcs {
		b.WriteString(strconv.FormatUint(uint64(pc), 36))
		b.WriteByte(',')
	}
	if accept {
		b.WriteByte('$')
	}
	key := b.String()
	if id, ok := m.index[key]; ok {
		return id
	}
	if len(m.states) > 1 && m.budget.left <= 0 {
		return -1
	}
	m.budget.left--
	id := int32(len(m.states))
	st := dfaState{pcs: pcs, accept: accept}
	for i := range st.next {
		st.next[i] = -1
	}
	m.states = append(m.states, st)
	m.index[key] = id
	return id
}
