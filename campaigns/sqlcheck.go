package campaigns

import (
	"fmt"
	"strings"
)

// A fact query must be one read-only statement: SELECT, or WITH ... SELECT.
// checkReadOnlySQL enforces that at validate time. The database is the
// second line of defence (store runs fact queries in a read-only
// transaction on MySQL and on a query-only connection on SQLite); this check
// exists so that a write fails at commit time, with its position, not at
// 3 a.m.
//
// The query is scanned twice, once with MySQL's lexical rules (backslash
// escapes in strings, "-- " comments need a space) and once with SQLite's
// (no backslash escapes, "--" always a comment), and must pass both: text
// that is a string in one dialect and code in the other is checked as code.

// sqlToken is one token of a fact query outside strings and comments.
type sqlToken struct {
	text string // a word (keyword or identifier), or one punctuation byte
	off  int    // byte offset in the query
	word bool
}

// sqlProblem is the first problem found, at a byte offset of the query.
type sqlProblem struct {
	off int
	msg string
}

// writeWords are keywords that only a statement that writes (or reads a
// file, or changes the session) uses. Quote an identifier that has one of
// these names. REPLACE and TRUNCATE are also functions: they are allowed
// when a "(" follows.
var writeWords = map[string]bool{
	"INSERT": true, "UPDATE": true, "DELETE": true, "REPLACE": true, "TRUNCATE": true, "MERGE": true, "UPSERT": true,
	"CREATE": true, "DROP": true, "ALTER": true, "RENAME": true, "ATTACH": true, "DETACH": true, "PRAGMA": true,
	"VACUUM": true, "REINDEX": true, "GRANT": true, "REVOKE": true, "INTO": true, "CALL": true, "HANDLER": true,
}

// checkReadOnlySQL returns the first problem of q, or nil when q is one
// read-only statement.
func checkReadOnlySQL(q string) *sqlProblem {
	var first *sqlProblem
	for _, mysql := range []bool{true, false} {
		toks, p := lexSQL(q, mysql)
		if p == nil {
			p = checkTokens(toks)
		}
		if p != nil && (first == nil || p.off < first.off) {
			first = p
		}
	}
	return first
}

// lexSQL splits q into words and punctuation, skipping strings, quoted
// identifiers and comments by the rules of one dialect.
func lexSQL(q string, mysql bool) ([]sqlToken, *sqlProblem) {
	var toks []sqlToken
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '\'' || c == '"' || c == '`' || (c == '[' && !mysql):
			end := c
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for ; j < len(q); j++ {
				if mysql && q[j] == '\\' && c != '`' {
					j++
					continue
				}
				if q[j] == end {
					if end != ']' && j+1 < len(q) && q[j+1] == end { // doubled quote
						j++
						continue
					}
					break
				}
			}
			if j >= len(q) {
				return nil, &sqlProblem{i, fmt.Sprintf("has an unterminated %c", c)}
			}
			toks = append(toks, sqlToken{text: "''", off: i}) // a literal or a quoted name
			i = j + 1
		case c == '-' && strings.HasPrefix(q[i:], "--") && (!mysql || i+2 == len(q) || isSQLSpace(q[i+2])):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			i += j
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			if strings.HasPrefix(q[i:], "/*!") || strings.HasPrefix(q[i:], "/*M!") {
				return nil, &sqlProblem{i, "must not use executable comments (/*! ... */)"}
			}
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return nil, &sqlProblem{i, "has an unterminated /* comment"}
			}
			i += 2 + j + 2
		case isIdent(c) || c >= 0x80:
			j := i
			for j < len(q) && (isIdent(q[j]) || q[j] == '$' || q[j] >= 0x80) {
				j++
			}
			toks = append(toks, sqlToken{text: q[i:j], off: i, word: true})
			i = j
		default:
			toks = append(toks, sqlToken{text: q[i : i+1], off: i})
			i++
		}
	}
	return toks, nil
}

func isSQLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdent(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// checkTokens checks the token stream of one dialect.
func checkTokens(toks []sqlToken) *sqlProblem {
	if len(toks) == 0 {
		return &sqlProblem{0, "is empty"}
	}
	// One statement: nothing but a final ";" after the first ";".
	for i, t := range toks {
		if t.text == ";" {
			if i+1 < len(toks) {
				return &sqlProblem{toks[i+1].off, "must be one statement: remove what follows the ';'"}
			}
			toks = toks[:i]
			break
		}
	}
	if len(toks) == 0 {
		return &sqlProblem{0, "is empty"}
	}
	switch strings.ToUpper(toks[0].text) {
	case "SELECT":
	case "WITH":
		if p := checkWith(toks); p != nil {
			return p
		}
	default:
		return &sqlProblem{toks[0].off, fmt.Sprintf("must be a SELECT (or WITH ... SELECT) statement, not %s", toks[0].text)}
	}
	for i, t := range toks {
		if !t.word {
			continue
		}
		w := strings.ToUpper(t.text)
		if writeWords[w] && !((w == "REPLACE" || w == "TRUNCATE") && i+1 < len(toks) && toks[i+1].text == "(") {
			return &sqlProblem{t.off, fmt.Sprintf("must only read: %s is not allowed (quote an identifier of that name)", w)}
		}
	}
	return nil
}

// checkWith checks that the statement after a WITH clause's common table
// expressions is a SELECT.
func checkWith(toks []sqlToken) *sqlProblem {
	i := 1
	if i < len(toks) && strings.EqualFold(toks[i].text, "RECURSIVE") {
		i++
	}
	for {
		// name [(columns)] AS [NOT] [MATERIALIZED] (body)
		if i >= len(toks) {
			return &sqlProblem{toks[len(toks)-1].off, "has an incomplete WITH clause"}
		}
		i++ // the name
		if i < len(toks) && toks[i].text == "(" {
			if i = skipParens(toks, i); i < 0 {
				return &sqlProblem{toks[len(toks)-1].off, "has unbalanced parentheses"}
			}
		}
		if i >= len(toks) || !strings.EqualFold(toks[i].text, "AS") {
			return &sqlProblem{offAt(toks, i), "has a WITH clause without AS (...) after the name"}
		}
		i++
		for i < len(toks) && (strings.EqualFold(toks[i].text, "NOT") || strings.EqualFold(toks[i].text, "MATERIALIZED")) {
			i++
		}
		if i >= len(toks) || toks[i].text != "(" {
			return &sqlProblem{offAt(toks, i), "has a WITH clause without ( after AS"}
		}
		if i = skipParens(toks, i); i < 0 {
			return &sqlProblem{toks[len(toks)-1].off, "has unbalanced parentheses"}
		}
		if i < len(toks) && toks[i].text == "," {
			i++
			continue
		}
		break
	}
	if i >= len(toks) || !strings.EqualFold(toks[i].text, "SELECT") {
		what := "nothing"
		if i < len(toks) {
			what = toks[i].text
		}
		return &sqlProblem{offAt(toks, i), fmt.Sprintf("must be WITH ... SELECT, not WITH ... %s: a fact query only reads", what)}
	}
	return nil
}

// skipParens returns the index after the ")" matching the "(" at toks[i],
// or -1.
func skipParens(toks []sqlToken, i int) int {
	depth := 0
	for ; i < len(toks); i++ {
		switch toks[i].text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

func offAt(toks []sqlToken, i int) int {
	if i < len(toks) {
		return toks[i].off
	}
	return toks[len(toks)-1].off
}

// offsetLineCol turns a byte offset of s into a 1-based line and a 1-based
// column counted in runes, as exprPos takes them.
func offsetLineCol(s string, off int) (int, int) {
	off = min(max(off, 0), len(s))
	line := 1 + strings.Count(s[:off], "\n")
	start := strings.LastIndexByte(s[:off], '\n') + 1
	return line, len([]rune(s[start:off])) + 1
}
