package kv

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestMetadataRead(t *testing.T) {
	c := newV2(t)
	put(t, c, "k", map[string]any{"v": 1})
	c.Clock.Advance(time.Minute)
	put(t, c, "k", map[string]any{"v": 2})
	must(t)(c.Delete("data/k", nil))

	got := must(t)(c.Read("metadata/k", nil)).Data
	later := enginetest.Epoch.Add(time.Minute).Format(time.RFC3339Nano)
	equalJSON(t, "metadata", got, map[string]any{
		"cas_required":         false,
		"created_time":         epochString,
		"current_version":      2,
		"custom_metadata":      nil,
		"delete_version_after": "0s",
		"max_versions":         0,
		"oldest_version":       0,
		"updated_time":         later,
		"versions": map[string]any{
			"1": map[string]any{"created_time": epochString, "deletion_time": "", "destroyed": false},
			"2": map[string]any{"created_time": later, "deletion_time": later, "destroyed": false},
		},
	})
	if _, err := c.Read("metadata/missing", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	_, err := c.Read("metadata", nil)
	wantErr(t, err, core.CodeInvalid, "missing path")
}

func TestMetadataWriteCreatesKey(t *testing.T) {
	c := newV2(t)
	must(t)(c.Write("metadata/new", map[string]any{
		"max_versions": 4, "cas_required": true, "delete_version_after": "2h30m",
		"custom_metadata": map[string]any{"owner": "ops"},
	}))
	got := must(t)(c.Read("metadata/new", nil)).Data
	equalJSON(t, "new key metadata", got, map[string]any{
		"cas_required": true, "created_time": epochString, "current_version": 0, "custom_metadata": map[string]any{"owner": "ops"},
		"delete_version_after": "2h30m0s", "max_versions": 4, "oldest_version": 0, "updated_time": epochString,
		"versions": map[string]any{},
	})
	// The key's cas_required applies to its first write.
	_, err := c.Write("data/new", map[string]any{"data": map[string]any{"a": 1}})
	wantErr(t, err, core.CodeInvalid, "check-and-set parameter required")
	w := put(t, c, "new", map[string]any{"a": 1}, map[string]any{"cas": 0})
	equalJSON(t, "write custom_metadata", w["custom_metadata"], map[string]any{"owner": "ops"})

	// Fields left out keep their values; a write with none is a no-op.
	must(t)(c.Write("metadata/new", map[string]any{"max_versions": 6}))
	got = must(t)(c.Read("metadata/new", nil)).Data
	if got["max_versions"] != 6 || got["cas_required"] != true || got["delete_version_after"] != "2h30m0s" {
		t.Errorf("partial write: %v", got)
	}
	if resp := must(t)(c.Write("metadata/nothing", map[string]any{})); resp != nil {
		t.Errorf("empty write answered %+v", resp)
	}
	if _, err := c.Read("metadata/nothing", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("empty write created the key: %v", err)
	}
	_, err = c.Write("metadata/new", map[string]any{"max_versions": -1})
	wantErr(t, err, core.CodeInvalid, "max_versions must not be negative")
}

func TestMetadataExistenceCheck(t *testing.T) {
	c := newV2(t)
	if exists, has, err := c.Exists(t.Context(), "metadata/k", nil); !has || exists || err != nil {
		t.Fatalf("before: exists=%v has=%v err=%v", exists, has, err)
	}
	must(t)(c.Write("metadata/k", map[string]any{"max_versions": 1}))
	if exists, _, _ := c.Exists(t.Context(), "metadata/k", nil); !exists {
		t.Error("after metadata write: does not exist")
	}
}

func TestCustomMetadata(t *testing.T) {
	c := newV2(t)
	put(t, c, "k", map[string]any{"v": 1})
	must(t)(c.Write("metadata/k", map[string]any{"custom_metadata": map[string]any{"owner": "ops", "n": 42, "flag": true}}))
	_, md := readData(t, c, "k")
	equalJSON(t, "custom_metadata on data read", md["custom_metadata"], map[string]any{"owner": "ops", "n": "42", "flag": "1"})

	// A write replaces custom_metadata wholesale.
	must(t)(c.Write("metadata/k", map[string]any{"custom_metadata": map[string]any{"team": "a"}}))
	equalJSON(t, "after replace", must(t)(c.Read("metadata/k", nil)).Data["custom_metadata"], map[string]any{"team": "a"})
	// A null custom_metadata in a write leaves it alone (as Vault does).
	must(t)(c.Write("metadata/k", map[string]any{"custom_metadata": nil, "max_versions": 3}))
	equalJSON(t, "after null write", must(t)(c.Read("metadata/k", nil)).Data["custom_metadata"], map[string]any{"team": "a"})
	// An empty object clears it.
	must(t)(c.Write("metadata/k", map[string]any{"custom_metadata": map[string]any{}}))
	if cm := must(t)(c.Read("metadata/k", nil)).Data["custom_metadata"]; cm != nil {
		t.Errorf("after clearing: %v", cm)
	}
}

func TestCustomMetadataValidation(t *testing.T) {
	c := newV2(t)
	many := map[string]any{}
	for i := range 65 {
		many[fmt.Sprint("k", i)] = "v"
	}
	for name, tc := range map[string]struct {
		cm   map[string]any
		want string
	}{
		"too many keys": {many, "payload must contain at most 64 keys, provided 65"},
		"long key":      {map[string]any{strings.Repeat("k", 129): "v"}, "length of key"},
		"long value":    {map[string]any{"k": strings.Repeat("v", 513)}, `length of value for key "k" is 513`},
		"empty value":   {map[string]any{"k": ""}, `length of value for key "k" is 0`},
		"null value":    {map[string]any{"k": nil}, `length of value for key "k" is 0`},
		"unprintable":   {map[string]any{"k": "a\x00b"}, "contains unprintable characters"},
		"object value":  {map[string]any{"k": map[string]any{"x": 1}}, `value for key "k" must be a string`},
	} {
		_, err := c.Write("metadata/k", map[string]any{"custom_metadata": tc.cm})
		if core.CodeOf(err) != core.CodeInvalid || !strings.Contains(err.Error(), customMetadataErrPrefix) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if _, err := c.Read("metadata/k", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("invalid writes created the key: %v", err)
	}
}

func TestMetadataPatch(t *testing.T) {
	c := newV2(t)
	_, err := c.Patch("metadata/k", map[string]any{"max_versions": 2})
	if !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("patch of a missing key: %v, want not found", err)
	}
	must(t)(c.Write("metadata/k", map[string]any{
		"max_versions": 4, "cas_required": true, "custom_metadata": map[string]any{"a": "1", "b": "2"},
	}))
	must(t)(c.Patch("metadata/k", map[string]any{
		"max_versions": 7, "custom_metadata": map[string]any{"b": nil, "c": "3"},
	}))
	got := must(t)(c.Read("metadata/k", nil)).Data
	if got["max_versions"] != 7 || got["cas_required"] != true {
		t.Errorf("patch changed untouched fields or missed max_versions: %v", got)
	}
	equalJSON(t, "merged custom_metadata", got["custom_metadata"], map[string]any{"a": "1", "c": "3"})

	must(t)(c.Patch("metadata/k", map[string]any{"custom_metadata": nil, "delete_version_after": "1m"}))
	got = must(t)(c.Read("metadata/k", nil)).Data
	if got["custom_metadata"] != nil || got["delete_version_after"] != "1m0s" {
		t.Errorf("null custom_metadata did not clear it, or delete_version_after missed: %v", got)
	}
	_, err = c.Patch("metadata/k", map[string]any{"custom_metadata": map[string]any{"x": ""}})
	wantErr(t, err, core.CodeInvalid, customMetadataErrPrefix)
}

func TestMetadataCASRequiredWarning(t *testing.T) {
	c := newV2(t)
	must(t)(c.Write("config", map[string]any{"cas_required": true}))
	for _, op := range []core.Operation{core.OpUpdate, core.OpPatch} {
		resp, err := c.Call(t.Context(), op, "metadata/k", map[string]any{"cas_required": false})
		if err != nil || resp == nil || !reflect.DeepEqual(resp.Warnings, []string{casIgnoredWarning}) {
			t.Errorf("%s: resp %+v, err %v; want the cas_required warning", op, resp, err)
		}
	}
	// And the mount setting still applies.
	_, err := c.Write("data/k", map[string]any{"data": map[string]any{"a": 1}})
	wantErr(t, err, core.CodeInvalid, "check-and-set parameter required")
}

func TestMetadataDelete(t *testing.T) {
	c := newV2(t)
	for i := 1; i <= 3; i++ {
		put(t, c, "dir/k", map[string]any{"i": i})
	}
	put(t, c, "dir/other", map[string]any{"i": 1})
	must(t)(c.Write("destroy/dir/k", map[string]any{"versions": []any{2}}))
	if resp := must(t)(c.Delete("metadata/dir/k", nil)); resp != nil {
		t.Errorf("delete answered %+v", resp)
	}
	if _, err := c.Read("metadata/dir/k", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("metadata after delete: %v", err)
	}
	if _, err := c.Read("data/dir/k", map[string]any{"version": 1}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("version 1 after delete: %v", err)
	}
	if n := storedVersions(t, c, "dir/k"); n != 0 {
		t.Errorf("%d version records left after metadata delete", n)
	}
	if n := storedVersions(t, c, "dir/other"); n != 1 {
		t.Errorf("another key lost its versions: %d left", n)
	}
	keys := must(t)(c.List("metadata/dir/")).Data["keys"]
	equalJSON(t, "list after delete", keys, []string{"other"})
	must(t)(c.Delete("metadata/dir/missing", nil))

	// The key starts afresh.
	w := put(t, c, "dir/k", map[string]any{"i": 9})
	if w["version"] != 1 {
		t.Errorf("rewrite after delete got version %v, want 1", w["version"])
	}
}

func TestMetadataList(t *testing.T) {
	c := newV2(t)
	if _, err := c.List("metadata/"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("empty mount list: %v, want not found", err)
	}
	for _, p := range []string{"a", "b/c", "b/d/e", "b"} {
		put(t, c, p, map[string]any{"x": 1})
	}
	must(t)(c.Write("metadata/z", map[string]any{"max_versions": 1})) // metadata-only keys are listed
	for path, want := range map[string][]string{
		"metadata/":    {"a", "b", "b/", "z"},
		"metadata":     {"a", "b", "b/", "z"},
		"metadata/b/":  {"c", "d/"},
		"metadata/b":   {"c", "d/"},
		"metadata/b/d": {"e"},
	} {
		resp := must(t)(c.List(path))
		equalJSON(t, "list "+path, resp.Data["keys"], want)
	}
	if _, err := c.List("metadata/nothing/"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("list of an empty folder: %v, want not found", err)
	}
	_, err := c.List("metadata/../")
	wantErr(t, err, core.CodeInvalid, "path segment")
}
