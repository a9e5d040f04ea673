package kv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

var epochString = enginetest.Epoch.Format(time.RFC3339Nano)

func TestDataWriteAndRead(t *testing.T) {
	c := newV2(t)
	got := put(t, c, "app/db", map[string]any{"user": "u", "n": 1 << 60, "nested": map[string]any{"x": true}})
	equalJSON(t, "write response", got, map[string]any{
		"version": 1, "created_time": epochString, "deletion_time": "", "destroyed": false, "custom_metadata": nil,
	})

	c.Clock.Advance(time.Minute)
	put(t, c, "app/db", map[string]any{"user": "v"})

	data, meta := readData(t, c, "app/db")
	equalJSON(t, "current data", data, map[string]any{"user": "v"})
	equalJSON(t, "current metadata", meta, map[string]any{
		"version": 2, "created_time": enginetest.Epoch.Add(time.Minute).Format(time.RFC3339Nano),
		"deletion_time": "", "destroyed": false, "custom_metadata": nil,
	})

	data, meta = readData(t, c, "app/db", 1)
	if meta["version"] != 1 {
		t.Errorf("version 1 read reports version %v", meta["version"])
	}
	// Large integers survive storage exactly (json.Number, not float64).
	if n, _ := data["n"].(json.Number); n.String() != "1152921504606846976" {
		t.Errorf("n = %#v, want the exact integer 2^60", data["n"])
	}
	equalJSON(t, "nested", data["nested"], map[string]any{"x": true})

	// version=0 means the current version.
	data, _ = readData(t, c, "app/db", 0)
	equalJSON(t, "version 0", data, map[string]any{"user": "v"})
}

func TestDataReadNotFound(t *testing.T) {
	c := newV2(t)
	_, err := c.Read("data/missing", nil)
	if !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing key: %v, want a bare not found", err)
	}
	put(t, c, "k", map[string]any{"a": "b"})
	resp, err := c.Read("data/k", map[string]any{"version": 7})
	if !errors.Is(err, core.ErrNotFound) || resp != nil {
		t.Errorf("missing version: %+v, %v, want a bare not found", resp, err)
	}
	// A key with metadata but no version yet has nothing to read.
	must(t)(c.Write("metadata/only-meta", map[string]any{"max_versions": 2}))
	if _, err := c.Read("data/only-meta", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("metadata-only key: %v, want not found", err)
	}
}

func TestDataWriteErrors(t *testing.T) {
	c := newV2(t)
	_, err := c.Write("data/a", map[string]any{"options": map[string]any{"cas": 0}})
	wantErr(t, err, core.CodeInvalid, "no data provided")
	_, err = c.Write("data/a", map[string]any{"data": nil})
	wantErr(t, err, core.CodeInvalid, "no data provided")
	// An empty object is valid data.
	put(t, c, "a", map[string]any{})
	data, _ := readData(t, c, "a")
	if len(data) != 0 || data == nil {
		t.Errorf("empty data read back as %#v", data)
	}
}

func TestCheckAndSet(t *testing.T) {
	c := newV2(t)
	// cas=0: only if the key does not exist.
	put(t, c, "k", map[string]any{"v": 1}, map[string]any{"cas": 0})
	_, err := c.Write("data/k", map[string]any{"data": map[string]any{"v": 2}, "options": map[string]any{"cas": 0}})
	wantErr(t, err, core.CodeInvalid, "check-and-set parameter did not match the current version")
	_, err = c.Write("data/k", map[string]any{"data": map[string]any{"v": 2}, "options": map[string]any{"cas": 2}})
	wantErr(t, err, core.CodeInvalid, "check-and-set parameter did not match the current version")
	put(t, c, "k", map[string]any{"v": 2}, map[string]any{"cas": 1})
	put(t, c, "k", map[string]any{"v": 3}, map[string]any{"cas": "2"}) // numeric strings are accepted

	for _, bad := range []any{"two", 2.5, true, map[string]any{}} {
		_, err = c.Write("data/k", map[string]any{"data": map[string]any{"v": 4}, "options": map[string]any{"cas": bad}})
		wantErr(t, err, core.CodeInvalid, "error parsing check-and-set parameter")
	}
	_, meta := readData(t, c, "k")
	if meta["version"] != 3 {
		t.Errorf("failed CAS writes changed the version to %v", meta["version"])
	}
}

func TestCASRequired(t *testing.T) {
	c := newV2(t)
	// Required by the key's metadata.
	must(t)(c.Write("metadata/k", map[string]any{"cas_required": true}))
	_, err := c.Write("data/k", map[string]any{"data": map[string]any{"v": 1}})
	wantErr(t, err, core.CodeInvalid, "check-and-set parameter required for this call")
	put(t, c, "k", map[string]any{"v": 1}, map[string]any{"cas": 0})
	_, err = c.Patch("data/k", map[string]any{"data": map[string]any{"v": 2}})
	wantErr(t, err, core.CodeInvalid, "check-and-set parameter required for this call")

	// Required by the mount configuration.
	put(t, c, "other", map[string]any{"v": 1})
	must(t)(c.Write("config", map[string]any{"cas_required": true}))
	_, err = c.Write("data/other", map[string]any{"data": map[string]any{"v": 2}})
	wantErr(t, err, core.CodeInvalid, "check-and-set parameter required for this call")
	put(t, c, "other", map[string]any{"v": 2}, map[string]any{"cas": 1})
}

func TestDataDeleteIsSoft(t *testing.T) {
	c := newV2(t)
	put(t, c, "k", map[string]any{"v": 1})
	put(t, c, "k", map[string]any{"v": 2})
	c.Clock.Advance(time.Hour)
	if resp := must(t)(c.Delete("data/k", nil)); resp != nil {
		t.Errorf("delete returned %+v, want no body", resp)
	}
	body := want404(t)(c.Read("data/k", nil))
	if body["data"] != nil {
		t.Errorf("deleted version returned data %v", body["data"])
	}
	equalJSON(t, "deleted metadata", body["metadata"], map[string]any{
		"version": 2, "created_time": epochString, "deletion_time": enginetest.Epoch.Add(time.Hour).Format(time.RFC3339Nano),
		"destroyed": false, "custom_metadata": nil,
	})
	// Older versions are untouched; the data itself is still stored.
	data, _ := readData(t, c, "k", 1)
	equalJSON(t, "version 1", data, map[string]any{"v": 1})
	if v, _ := c.View.Get(t.Context(), versionKey("k", 2)); v == nil {
		t.Error("soft delete removed the version's data")
	}
	// Deleting again, or a missing key, is not an error and changes nothing.
	c.Clock.Advance(time.Hour)
	must(t)(c.Delete("data/k", nil))
	must(t)(c.Delete("data/nothing", nil))
	body = want404(t)(c.Read("data/k", nil))
	if dt := body["metadata"].(map[string]any)["deletion_time"]; dt != enginetest.Epoch.Add(time.Hour).Format(time.RFC3339Nano) {
		t.Errorf("second delete moved deletion_time to %v", dt)
	}
	// A new write after a delete is readable.
	put(t, c, "k", map[string]any{"v": 3})
	data, _ = readData(t, c, "k")
	equalJSON(t, "after rewrite", data, map[string]any{"v": 3})
}

func TestMaxVersionsPruning(t *testing.T) {
	c := newV2(t)
	for i := 1; i <= 12; i++ {
		put(t, c, "k", map[string]any{"i": i})
	}
	meta := must(t)(c.Read("metadata/k", nil)).Data
	if meta["current_version"] != 12 || meta["oldest_version"] != 3 {
		t.Errorf("current/oldest = %v/%v, want 12/3 with the default of 10 versions", meta["current_version"], meta["oldest_version"])
	}
	if n := len(meta["versions"].(map[string]any)); n != 10 {
		t.Errorf("%d versions kept, want 10", n)
	}
	for _, v := range []int{1, 2} {
		if _, err := c.Read("data/k", map[string]any{"version": v}); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("pruned version %d: %v, want not found", v, err)
		}
	}
	if n := storedVersions(t, c, "k"); n != 10 {
		t.Errorf("%d version records in storage, want 10", n)
	}

	// The mount setting applies to keys without their own.
	must(t)(c.Write("config", map[string]any{"max_versions": 3}))
	put(t, c, "k", map[string]any{"i": 13})
	meta = must(t)(c.Read("metadata/k", nil)).Data
	if meta["oldest_version"] != 11 || storedVersions(t, c, "k") != 3 {
		t.Errorf("after lowering config max_versions: oldest %v, %d stored; want 11, 3", meta["oldest_version"], storedVersions(t, c, "k"))
	}

	// A key's own max_versions wins over the mount's.
	must(t)(c.Write("metadata/k", map[string]any{"max_versions": 5}))
	for i := 14; i <= 20; i++ {
		put(t, c, "k", map[string]any{"i": i})
	}
	if n := storedVersions(t, c, "k"); n != 5 {
		t.Errorf("%d stored with key max_versions 5", n)
	}
	data, _ := readData(t, c, "k", 16)
	equalJSON(t, "oldest kept", data, map[string]any{"i": 16})
}

// storedVersions counts the version records of path in storage.
func storedVersions(t *testing.T, c *enginetest.Client, path string) int {
	t.Helper()
	keys, err := c.View.List(t.Context(), versionDir(path))
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

func TestDeleteVersionAfter(t *testing.T) {
	c := newV2(t)
	must(t)(c.Write("config", map[string]any{"delete_version_after": "1h"}))
	w := put(t, c, "k", map[string]any{"v": 1})
	if w["deletion_time"] != enginetest.Epoch.Add(time.Hour).Format(time.RFC3339Nano) {
		t.Errorf("write deletion_time = %v, want created + 1h", w["deletion_time"])
	}
	c.Clock.Advance(59 * time.Minute)
	data, _ := readData(t, c, "k")
	equalJSON(t, "before expiry", data, map[string]any{"v": 1})
	c.Clock.Advance(time.Minute)
	body := want404(t)(c.Read("data/k", nil))
	if body["data"] != nil {
		t.Error("expired version returned data")
	}

	// The smaller of the key's and the mount's setting applies.
	must(t)(c.Write("metadata/short", map[string]any{"delete_version_after": "10m"}))
	w = put(t, c, "short", map[string]any{"v": 1})
	if w["deletion_time"] != c.Clock.Now().Add(10*time.Minute).Format(time.RFC3339Nano) {
		t.Errorf("key setting not applied: deletion_time %v", w["deletion_time"])
	}
	must(t)(c.Write("metadata/long", map[string]any{"delete_version_after": "5h"}))
	w = put(t, c, "long", map[string]any{"v": 1})
	if w["deletion_time"] != c.Clock.Now().Add(time.Hour).Format(time.RFC3339Nano) {
		t.Errorf("mount setting not the minimum: deletion_time %v", w["deletion_time"])
	}

	// A negative mount setting disables the feature for every key.
	must(t)(c.Write("config", map[string]any{"delete_version_after": "-1"}))
	if got := must(t)(c.Read("config", nil)).Data["delete_version_after"]; got != "-1s" {
		t.Errorf("disabled config reads as %v, want -1s", got)
	}
	w = put(t, c, "short", map[string]any{"v": 2})
	if w["deletion_time"] != "" {
		t.Errorf("disabled delete_version_after still set deletion_time %v", w["deletion_time"])
	}
}

func TestDataPatch(t *testing.T) {
	c := newV2(t)
	put(t, c, "k", map[string]any{"keep": "a", "change": "b", "drop": "c", "obj": map[string]any{"x": 1, "y": 2}})
	c.Clock.Advance(time.Second)
	resp := must(t)(c.Patch("data/k", map[string]any{"data": map[string]any{
		"change": "B", "drop": nil, "add": []any{1, 2}, "obj": map[string]any{"y": nil, "z": 3},
	}}))
	equalJSON(t, "patch response", resp.Data, map[string]any{
		"version": 2, "created_time": enginetest.Epoch.Add(time.Second).Format(time.RFC3339Nano),
		"deletion_time": "", "destroyed": false, "custom_metadata": nil,
	})
	data, _ := readData(t, c, "k")
	equalJSON(t, "patched data", data, map[string]any{"keep": "a", "change": "B", "add": []any{1, 2}, "obj": map[string]any{"x": 1, "z": 3}})
	old, _ := readData(t, c, "k", 1)
	equalJSON(t, "version 1 untouched", old, map[string]any{"keep": "a", "change": "b", "drop": "c", "obj": map[string]any{"x": 1, "y": 2}})

	// CAS applies to patches too.
	_, err := c.Patch("data/k", map[string]any{"data": map[string]any{"a": 1}, "options": map[string]any{"cas": 1}})
	wantErr(t, err, core.CodeInvalid, "check-and-set parameter did not match the current version")
	must(t)(c.Patch("data/k", map[string]any{"data": map[string]any{"a": 1}, "options": map[string]any{"cas": 2}}))

	_, err = c.Patch("data/k", map[string]any{})
	wantErr(t, err, core.CodeInvalid, "no data provided")
	if _, err = c.Patch("data/missing", map[string]any{"data": map[string]any{"a": 1}}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("patch of a missing key: %v, want not found", err)
	}
	must(t)(c.Write("metadata/empty", map[string]any{"max_versions": 1}))
	if _, err = c.Patch("data/empty", map[string]any{"data": map[string]any{"a": 1}}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("patch of a key without versions: %v, want not found", err)
	}

	// A deleted or destroyed current version cannot be patched: 404 with
	// the version's metadata.
	must(t)(c.Delete("data/k", nil))
	body := want404(t)(c.Patch("data/k", map[string]any{"data": map[string]any{"a": 2}}))
	if body["version"] != 3 || body["deletion_time"] == "" {
		t.Errorf("patch of deleted version: %v", body)
	}
	must(t)(c.Write("destroy/k", map[string]any{"versions": []any{3}}))
	body = want404(t)(c.Patch("data/k", map[string]any{"data": map[string]any{"a": 2}}))
	if body["destroyed"] != true {
		t.Errorf("patch of destroyed version: %v", body)
	}
}

func TestDataExistenceCheck(t *testing.T) {
	c := newV2(t)
	ctx := t.Context()
	exists, has, err := c.Exists(ctx, "data/k", nil)
	if !has || exists || err != nil {
		t.Fatalf("before write: exists=%v has=%v err=%v", exists, has, err)
	}
	put(t, c, "k", map[string]any{"a": 1})
	if exists, _, _ = c.Exists(ctx, "data/k", nil); !exists {
		t.Error("after write: does not exist")
	}
	must(t)(c.Write("metadata/m", map[string]any{"max_versions": 1}))
	if exists, _, _ = c.Exists(ctx, "data/m", nil); !exists {
		t.Error("metadata-only key: does not exist")
	}
	if exists, _, err = c.Exists(ctx, "data/a/../b", nil); exists || err != nil {
		t.Errorf("invalid path: exists=%v err=%v, want false, nil", exists, err)
	}
}

// TestWriteLeavesOtherVersionsUntouched checks the storage layout: one
// record per version, and a write rewrites only the metadata and the new
// version.
func TestWriteLeavesOtherVersionsUntouched(t *testing.T) {
	c := newV2(t)
	put(t, c, "dir/k", map[string]any{"v": 1})
	put(t, c, "dir/k", map[string]any{"v": 2})
	before := snapshot(t, c)
	put(t, c, "dir/k", map[string]any{"v": 3})
	after := snapshot(t, c)
	for k, v := range before {
		if k == metaKey("dir/k") {
			continue
		}
		if !bytes.Equal(after[k], v) {
			t.Errorf("write of version 3 changed %q", k)
		}
	}
	var keys []string
	for k := range after {
		keys = append(keys, k)
	}
	want := []string{metaKey("dir/k"), versionKey("dir/k", 1), versionKey("dir/k", 2), versionKey("dir/k", 3)}
	if len(keys) != len(want) {
		t.Errorf("stored keys %v, want %v", keys, want)
	}
	for _, k := range want {
		if after[k] == nil {
			t.Errorf("missing stored key %q", k)
		}
	}
	if !strings.HasPrefix(versionKey("dir/k", 1), "versions/") || strings.Contains(versionKey("dir/k", 1), "dir/k") {
		t.Errorf("version key %q should be under a hashed folder", versionKey("dir/k", 1))
	}
}

// snapshot returns every key under the client's storage view.
func snapshot(t *testing.T, c *enginetest.Client) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, k := range c.Storage.Keys() {
		rel, found := strings.CutPrefix(k, c.View.Prefix())
		if !found {
			continue
		}
		v, err := c.Storage.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		out[rel] = v
	}
	return out
}

// TestConcurrentWrites checks that concurrent writes and patches to one key
// lose nothing: every write gets its own version, and every patch sees the
// previous one.
func TestConcurrentWrites(t *testing.T) {
	c := newV2(t)
	must(t)(c.Write("config", map[string]any{"max_versions": 100}))
	put(t, c, "patched", map[string]any{"start": true})
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := c.Write("data/written", map[string]any{"data": map[string]any{"i": i}}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := c.Patch("data/patched", map[string]any{"data": map[string]any{fmt.Sprint("k", i): i}}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if _, err := c.Read("data/patched", nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	md := must(t)(c.Read("metadata/written", nil)).Data
	if md["current_version"] != n || len(md["versions"].(map[string]any)) != n || storedVersions(t, c, "written") != n {
		t.Errorf("after %d concurrent writes: current %v, %d versions, %d stored", n, md["current_version"],
			len(md["versions"].(map[string]any)), storedVersions(t, c, "written"))
	}
	data, meta := readData(t, c, "patched")
	if len(data) != n+1 || meta["version"] != n+1 {
		t.Errorf("after %d concurrent patches: version %v with %d keys, want %d and %d", n, meta["version"], len(data), n+1, n+1)
	}
}
