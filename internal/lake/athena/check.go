package athena

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// Check refuses, before anything reaches Athena, a statement that is not
// a single read-only query over the tenant's databases, with the same
// reasons (lake.Refused*) as the embedded sandbox. Accepted are SELECT
// and WITH queries (maybe parenthesized), as in the sandbox, so that a
// query valid in one mode is valid in the other; SHOW, DESCRIBE and
// EXPLAIN are refused too (EXPLAIN ANALYZE runs its statement, and their
// answers are not results). A table may be named alone (it is looked up
// in databases[0], the query's context) or qualified by one of databases
// (and the AwsDataCatalog catalog); a name qualified by any other
// database is refused. A dedicated tenant's databases are its own; a
// pooled tenant's are the pool's (its clean and curated tables, shared
// by the pool's tenants) and its own (its raw and staging tables).
//
// It reads tokens, not a grammar: comments, string literals and quoted
// identifiers cannot fool it, and it refuses no valid query of the
// tenant's own tables; what it cannot tell (an unknown table, a type
// error) Athena answers when the query runs. It is a courtesy, not the
// boundary: the query runs with the tenant's own credentials, and Lake
// Formation and the tenant's session policy refuse what is not the
// tenant's whatever the statement says.
func Check(databases []string, sql string, maxSQL int) error {
	if len(databases) == 0 {
		return lake.Refuse(lake.RefusedOtherTenant, "The tenant has no database to query.")
	}
	if len(sql) > maxSQL {
		return lake.Refuse(lake.RefusedTooLong, fmt.Sprintf("The statement is %d bytes long; at most %d are accepted.", len(sql), maxSQL))
	}
	toks, err := tokenize(sql)
	if err != nil {
		return err
	}
	var stmts [][]token
	for s := range splitTokens(toks) {
		if len(s) > 0 {
			stmts = append(stmts, s)
		}
	}
	switch len(stmts) {
	case 0:
		return lake.Refuse(lake.RefusedSyntax, "The statement is empty.")
	case 1:
	default:
		return lake.Refuse(lake.RefusedNotSelect, fmt.Sprintf("The text holds %d statements; send one SELECT (or WITH) statement.", len(stmts)))
	}
	toks = stmts[0]
	first := firstWord(toks)
	switch first {
	case "SELECT", "WITH":
	case "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER", "UNLOAD", "MSCK", "TRUNCATE",
		"VACUUM", "OPTIMIZE", "GRANT", "REVOKE", "CALL", "COMMENT", "REFRESH":
		return lake.Refuse(lake.RefusedWrite, first+" is a write: queries are read-only; send one SELECT (or WITH) statement.")
	case "SET", "RESET":
		return lake.Refuse(lake.RefusedSettings, "Settings cannot be changed: "+first+" is refused; send one SELECT (or WITH) statement.")
	case "USE":
		return lake.Refuse(lake.RefusedAttach, "Other databases cannot be used: USE is refused; a query sees its tenant's tables only.")
	case "":
		return lake.Refuse(lake.RefusedNotSelect, "The statement is not a query: send one SELECT (or WITH) statement.")
	default:
		return lake.Refuse(lake.RefusedNotSelect, first+" is refused: send one SELECT (or WITH) statement.")
	}
	for _, name := range relations(toks) {
		// Athena's metadata tables ("tracks$partitions", "$files", ...)
		// answer from the catalog, which for the pool's shared tables
		// lists every pooled tenant's partitions.
		if t := name[len(name)-1].text; strings.Contains(t, "$") {
			return lake.Refuse(lake.RefusedOtherTenant, t+": metadata tables are refused: a query sees its tenant's own rows only.")
		}
		if !slices.ContainsFunc(databases, func(db string) bool { return ownTable(db, name) }) {
			parts := make([]string, len(name))
			for i, p := range name {
				parts[i] = p.text
			}
			return lake.Refuse(lake.RefusedOtherTenant, fmt.Sprintf("%s: name tables alone (%s), or in the tenant's databases %s: a query sees its tenant's own tables only.",
				strings.Join(parts, "."), name[len(name)-1].text, strings.Join(databases, " or ")))
		}
	}
	return nil
}

// ownTable reports whether a table's name is in database: alone,
// <database>.<table> or awsdatacatalog.<database>.<table>.
func ownTable(database string, name []token) bool {
	switch len(name) {
	case 1:
		return true
	case 2:
		return strings.EqualFold(name[0].text, database)
	case 3:
		return strings.EqualFold(name[0].text, "awsdatacatalog") && strings.EqualFold(name[1].text, database)
	}
	return false
}

// tokenKind is what a token is.
type tokenKind int

const (
	tokWord   tokenKind = iota // a keyword or an unquoted identifier
	tokQuoted                  // a "quoted" (or `quoted`) identifier, unescaped
	tokString                  // a 'string' literal
	tokNumber
	tokPunct // one character: ( ) , . ; and the operators
)

type token struct {
	kind tokenKind
	text string
}

func (t token) is(word string) bool { return t.kind == tokWord && strings.EqualFold(t.text, word) }
func (t token) punct(c string) bool { return t.kind == tokPunct && t.text == c }
func (t token) name() bool          { return t.kind == tokWord || t.kind == tokQuoted }

// tokenize cuts sql into tokens, without whitespace and comments.
func tokenize(sql string) ([]token, error) {
	var out []token
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				return out, nil
			}
			i += end + 1
		case strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, lake.Refuse(lake.RefusedSyntax, "The statement does not parse: a comment is not closed (*/).")
			}
			i += 2 + end + 2
		case c == '\'' || c == '"' || c == '`':
			text, n, ok := quoted(sql[i:], c)
			if !ok {
				return nil, lake.Refuse(lake.RefusedSyntax, fmt.Sprintf("The statement does not parse: a quote (%c) is not closed.", c))
			}
			kind := tokQuoted
			if c == '\'' {
				kind = tokString
			}
			out = append(out, token{kind, text})
			i += n
		case c >= '0' && c <= '9':
			j := i
			for j < len(sql) && (isWordByte(sql[j]) || sql[j] == '.') {
				j++
			}
			out = append(out, token{tokNumber, sql[i:j]})
			i = j
		case c == '_' || c >= 0x80 || unicode.IsLetter(rune(c)):
			j := i
			for j < len(sql) && (isWordByte(sql[j]) || sql[j] >= 0x80) {
				j++
			}
			out = append(out, token{tokWord, sql[i:j]})
			i = j
		default:
			out = append(out, token{tokPunct, string(c)})
			i++
		}
	}
	return out, nil
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// quoted reads a literal or identifier opened by q at s[0], where a
// doubled q stands for itself; it returns its text and length.
func quoted(s string, q byte) (string, int, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != q {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == q {
			b.WriteByte(q)
			i++
			continue
		}
		return b.String(), i + 1, true
	}
	return "", 0, false
}

// splitTokens yields the statements of toks, cut at each semicolon.
func splitTokens(toks []token) func(func([]token) bool) {
	return func(yield func([]token) bool) {
		start := 0
		for i, t := range toks {
			if t.punct(";") {
				if !yield(toks[start:i]) {
					return
				}
				start = i + 1
			}
		}
		yield(toks[start:])
	}
}

// firstWord is a statement's first keyword, upper-cased, after any
// opening parentheses ("" if it starts with something else).
func firstWord(toks []token) string {
	for _, t := range toks {
		if t.punct("(") {
			continue
		}
		if t.kind == tokWord {
			return strings.ToUpper(t.text)
		}
		return ""
	}
	return ""
}

// endsFrom are the keywords after which a comma no longer separates
// relations.
var endsFrom = []string{"SELECT", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FETCH",
	"UNION", "INTERSECT", "EXCEPT", "WINDOW", "VALUES"}

// notCalls are the keywords a parenthesis may follow without being a
// function's arguments.
var notCalls = []string{"FROM", "JOIN", "IN", "AS", "EXISTS", "ON", "AND", "OR", "NOT", "SELECT", "WHERE", "HAVING",
	"ANY", "ALL", "SOME", "LATERAL", "UNION", "INTERSECT", "EXCEPT", "THEN", "ELSE", "WHEN", "USING", "WITH", "BY", "VALUES"}

// relations returns the names (their parts) a query reads from: those
// after FROM and JOIN, and after each comma of a FROM list, at every
// depth (subqueries, CTEs). A FROM among a function's arguments
// (EXTRACT(... FROM x), TRIM, SUBSTRING) or after IS [NOT] DISTINCT is
// no relation's.
func relations(toks []token) [][]token {
	type frame struct{ call, inFrom bool }
	stack := []frame{{}}
	var out [][]token
	expect := false
	for i := 0; i < len(toks); i++ {
		t, top := toks[i], &stack[len(stack)-1]
		switch {
		case t.punct("("):
			call := i > 0 && (toks[i-1].kind == tokQuoted || toks[i-1].kind == tokWord && !slices.ContainsFunc(notCalls, toks[i-1].is))
			// A parenthesis where a relation is expected opens a
			// subquery or a parenthesized join, whose first name is a
			// relation's.
			stack = append(stack, frame{call: call && !expect, inFrom: expect})
		case t.punct(")"):
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			expect = false
		case t.punct(","):
			expect = top.inFrom
		case t.is("FROM"):
			distinct := i >= 2 && toks[i-1].is("DISTINCT") && (toks[i-2].is("IS") || toks[i-2].is("NOT"))
			if !top.call && !distinct {
				top.inFrom, expect = true, true
			}
		case t.is("JOIN"):
			top.inFrom, expect = true, true
		case slices.ContainsFunc(endsFrom, t.is):
			top.inFrom, expect = false, false
		case expect && t.name() && !t.is("LATERAL") && !t.is("UNNEST") && !t.is("TABLE"):
			name := []token{t}
			for i+2 < len(toks) && toks[i+1].punct(".") && toks[i+2].name() {
				name = append(name, toks[i+2])
				i += 2
			}
			out = append(out, name)
			expect = false
		default:
			expect = false
		}
	}
	return out
}
