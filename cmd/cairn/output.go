package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
)

// columns name what a table shows of a resource: a header and a dotted
// path into the API's JSON. Tables are for people; scripts read -o json,
// which is the API's answer unchanged, so that a field the API adds shows
// there without a change here.
type columns []column

type column struct{ header, path string }

func cols(pairs ...string) columns {
	c := make(columns, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		c = append(c, column{pairs[i], pairs[i+1]})
	}
	return c
}

// show prints an answer's body in the chosen output format. An empty body
// (204) prints nothing but, in a table, done.
func (a *app) show(body []byte, c columns, done string) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		if a.output == "table" && done != "" {
			fmt.Fprintln(a.stdout, done)
		}
		return nil
	}
	switch a.output {
	case "json":
		var buf bytes.Buffer
		if err := json.Indent(&buf, body, "", "  "); err != nil {
			return transportError{fmt.Errorf("the answer is not JSON: %w", err)}
		}
		buf.WriteByte('\n')
		_, err := a.stdout.Write(buf.Bytes())
		return err
	case "yaml":
		out, err := jsonToYAML(body)
		if err != nil {
			return transportError{fmt.Errorf("the answer is not JSON: %w", err)}
		}
		_, err = a.stdout.Write(out)
		return err
	default:
		return printTable(a.stdout, body, c)
	}
}

// jsonToYAML re-encodes JSON as block-style YAML, keeping the keys in the
// API's order (JSON is YAML, so the YAML parser reads it into nodes; only
// their flow and quoting styles are dropped, and the encoder quotes again
// whatever would otherwise read as another type).
func jsonToYAML(body []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(body, &n); err != nil {
		return nil, err
	}
	var clear func(*yaml.Node)
	clear = func(n *yaml.Node) {
		n.Style = 0
		for _, c := range n.Content {
			clear(c)
		}
	}
	clear(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// printTable prints a list envelope's items, a report's buckets, or one
// object, as rows.
func printTable(w io.Writer, body []byte, c columns) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return transportError{fmt.Errorf("the answer is not JSON: %w", err)}
	}
	rows := []any{v}
	if m, ok := v.(map[string]any); ok {
		if items, ok := m["items"].([]any); ok {
			rows = items
		} else if buckets, ok := m["buckets"].([]any); ok {
			rows = buckets
		}
	}
	if len(c) == 0 {
		// Nothing chosen to show: the answer is best read whole.
		out, err := jsonToYAML(body)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	headers := make([]string, len(c))
	for i, col := range c {
		headers[i] = col.header
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, row := range rows {
		cells := make([]string, len(c))
		for i, col := range c {
			cells[i] = cell(lookup(row, col.path))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// cell renders one value on one line: lists of scalars comma-joined,
// objects as compact JSON, tabs and newlines as spaces.
func cell(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		s = v
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = cell(e)
		}
		s = strings.Join(parts, ",")
	case map[string]any:
		if len(v) == 0 {
			return ""
		}
		// An identifier reads best as the API takes it: type:value.
		typ, okT := v["type"].(string)
		val, okV := v["value"].(string)
		if okT && okV {
			return typ + ":" + val
		}
		b, _ := json.Marshal(v)
		s = string(b)
	default:
		s = fmt.Sprint(v)
	}
	return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
}

// readBody reads a request body from a JSON or YAML file ("-" is standard
// input) and returns it as JSON, so that operators may keep definitions in
// either.
func (a *app) readBody(path string) ([]byte, error) {
	if path == "" {
		return nil, usagef("give the body with -f FILE (JSON or YAML; - reads standard input)")
	}
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(a.stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if json.Valid(b) {
		return b, nil
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, usagef("%s is neither JSON nor YAML: %v", path, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, usagef("%s cannot be sent as JSON: %v", path, err)
	}
	return out, nil
}
