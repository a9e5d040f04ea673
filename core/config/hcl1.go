package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
)

// The server configuration is read with HCL version 1, the parser Vault and
// OpenBao use for theirs, so that every file they accept (quoted keys,
// "key { }" and "key = { }" for the same map, JSON's nested forms) parses
// here too. Policies, which Vault parses with HCL 2, are not affected.

// item is one entry of an HCL body: an attribute (name = value) or a block
// (name "label" ... { body }).
type item struct {
	name   string
	labels []string
	pos    token.Pos
	val    ast.Node
}

// parseHCL1 parses src (HCL or JSON, told apart as Vault does) into the
// top-level items. Token positions carry filename.
func parseHCL1(filename string, src []byte) (items []item, err error) {
	defer func() {
		// The HCL 1 token decoder panics on a few malformed literals; a
		// configuration error must never crash the server.
		if r := recover(); r != nil {
			items, err = nil, fmt.Errorf("config: %s: malformed value: %v", filename, r)
		}
	}()
	f, err := hcl.ParseBytes(src)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", filename, err)
	}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok {
		return nil, fmt.Errorf("config: %s: the file must be an object of settings", filename)
	}
	return bodyItems(list), nil
}

func bodyItems(list *ast.ObjectList) []item {
	if list == nil {
		return nil
	}
	out := make([]item, 0, len(list.Items))
	for _, it := range list.Items {
		if len(it.Keys) == 0 {
			continue
		}
		keys := make([]string, len(it.Keys))
		for i, k := range it.Keys {
			keys[i] = keyText(k)
		}
		out = append(out, item{name: keys[0], labels: keys[1:], pos: it.Keys[0].Pos(), val: it.Val})
	}
	return out
}

func keyText(k *ast.ObjectKey) string {
	if v, err := tokenValue(k.Token); err == nil {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return k.Token.Text
}

// where is "file:line" of a position.
func where(file string, p token.Pos) string {
	if p.Filename != "" {
		file = p.Filename
	}
	if p.Line <= 0 {
		return file // JSON list elements carry no position
	}
	return fmt.Sprintf("%s:%d", file, p.Line)
}

// block is one block with its labels and body.
type block struct {
	name   string
	labels []string
	pos    token.Pos
	body   []item
}

// blocksOf reads it as blocks with exactly n labels. It accepts HCL's
// `name "a" "b" { }`, JSON's `"name": {"a": {"b": {}}}` and JSON arrays of
// either.
func blocksOf(file string, it item, n int) ([]block, error) {
	var out []block
	var walk func(labels []string, pos token.Pos, v ast.Node) error
	walk = func(labels []string, pos token.Pos, v ast.Node) error {
		switch x := v.(type) {
		case *ast.ObjectType:
			if len(labels) == n {
				out = append(out, block{name: it.name, labels: labels, pos: pos, body: bodyItems(x.List)})
				return nil
			}
			if len(labels) > n {
				return fmt.Errorf("config: %s: %s takes %d label(s), got %d", where(file, pos), it.name, n, len(labels))
			}
			if x.List == nil || len(x.List.Items) == 0 {
				return fmt.Errorf("config: %s: %s needs %d label(s)", where(file, pos), it.name, n)
			}
			for _, child := range bodyItems(x.List) {
				more := append(append([]string{}, labels...), child.name)
				more = append(more, child.labels...)
				if err := walk(more, child.pos, child.val); err != nil {
					return err
				}
			}
			return nil
		case *ast.ListType:
			for _, e := range x.List {
				if err := walk(labels, pos, e); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("config: %s: %s must be a block", where(file, pos), it.name)
	}
	if err := walk(it.labels, it.pos, it.val); err != nil {
		return nil, err
	}
	return out, nil
}

// scalar returns the value of a literal as a string (bools and numbers in
// their usual spelling). Lists and objects are errors.
func scalar(file string, it item) (Value, error) {
	v := Value{Line: it.pos.Line, File: file}
	if it.pos.Filename != "" {
		v.File = it.pos.Filename
	}
	if len(it.labels) > 0 {
		return v, fmt.Errorf("config: %s: %s is a setting, not a block", v.Where(), it.name)
	}
	switch x := it.val.(type) {
	case *ast.LiteralType:
		s, err := literal(x)
		if err != nil {
			return v, fmt.Errorf("config: %s: %s: %w", v.Where(), it.name, err)
		}
		v.Value = s
		return v, nil
	case *ast.ListType:
		for _, e := range x.List {
			lit, ok := e.(*ast.LiteralType)
			if !ok {
				return v, fmt.Errorf("config: %s: %s: list elements must be strings, numbers or bools", v.Where(), it.name)
			}
			s, err := literal(lit)
			if err != nil {
				return v, fmt.Errorf("config: %s: %s: %w", v.Where(), it.name, err)
			}
			v.List = append(v.List, s)
		}
		v.Value = strings.Join(v.List, ",")
		v.IsList = true
		return v, nil
	}
	return v, fmt.Errorf("config: %s: %s must be a string, number, bool or list", v.Where(), it.name)
}

// tokenValue is Token.Value without its panics on malformed literals (which
// the HCL 1 lexer lets through, e.g. the number "0eA").
func tokenValue(t token.Token) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed literal %q", t.Text)
		}
	}()
	return t.Value(), nil
}

func literal(x *ast.LiteralType) (string, error) {
	val, err := tokenValue(x.Token)
	if err != nil {
		return "", err
	}
	switch v := val.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("unsupported literal %q", x.Token.Text)
}

// stringMap reads an object of scalars (`options { k = "v" }` or
// `options = { k = "v" }`).
func stringMap(file string, it item) (map[string]Value, error) {
	out := map[string]Value{}
	var add func(v ast.Node) error
	add = func(v ast.Node) error {
		switch x := v.(type) {
		case *ast.ObjectType:
			for _, child := range bodyItems(x.List) {
				val, err := scalar(file, child)
				if err != nil {
					return err
				}
				out[child.name] = val
			}
			return nil
		case *ast.ListType:
			for _, e := range x.List {
				if err := add(e); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("config: %s: %s must be an object of settings", where(file, it.pos), it.name)
	}
	if len(it.labels) > 0 {
		return nil, fmt.Errorf("config: %s: %s takes no labels", where(file, it.pos), it.name)
	}
	return out, add(it.val)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
