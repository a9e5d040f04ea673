package kv

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestSubkeys(t *testing.T) {
	c := newV2(t)
	put(t, c, "k", map[string]any{"a": 1})
	put(t, c, "k", map[string]any{
		"foo":  "abc",
		"bar":  map[string]any{"baz": "def", "deep": map[string]any{"x": 1}},
		"quux": map[string]any{},
		"list": []any{1, map[string]any{"hidden": 2}},
	})
	for _, tc := range []struct {
		depth any
		want  map[string]any
	}{
		{nil, map[string]any{"foo": nil, "bar": map[string]any{"baz": nil, "deep": map[string]any{"x": nil}}, "quux": nil, "list": nil}},
		{0, map[string]any{"foo": nil, "bar": map[string]any{"baz": nil, "deep": map[string]any{"x": nil}}, "quux": nil, "list": nil}},
		{1, map[string]any{"foo": nil, "bar": nil, "quux": nil, "list": nil}},
		{"2", map[string]any{"foo": nil, "bar": map[string]any{"baz": nil, "deep": nil}, "quux": nil, "list": nil}},
	} {
		q := map[string]any{}
		if tc.depth != nil {
			q["depth"] = tc.depth
		}
		resp := must(t)(c.Read("subkeys/k", q))
		equalJSON(t, fmt.Sprint("subkeys depth ", tc.depth), resp.Data["subkeys"], tc.want)
		if md := resp.Data["metadata"].(map[string]any); md["version"] != 2 {
			t.Errorf("depth %v: metadata %v", tc.depth, md)
		}
	}

	resp := must(t)(c.Read("subkeys/k", map[string]any{"version": 1}))
	equalJSON(t, "version 1 subkeys", resp.Data["subkeys"], map[string]any{"a": nil})

	_, err := c.Read("subkeys/k", map[string]any{"depth": -1})
	wantErr(t, err, core.CodeInvalid, "depth must not be negative")
	if _, err := c.Read("subkeys/missing", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := c.Read("subkeys/k", map[string]any{"version": 5}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing version: %v", err)
	}

	must(t)(c.Delete("data/k", nil))
	body := want404(t)(c.Read("subkeys/k", nil))
	if body["subkeys"] != nil || body["metadata"].(map[string]any)["deletion_time"] == "" {
		t.Errorf("deleted version: %v", body)
	}
}
