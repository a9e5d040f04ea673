package kv

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
	"github.com/vigilsec/vigil/core/framework"
)

var (
	mountV1 = core.MountInfo{Path: "kv/", Type: "kv", Options: map[string]string{"version": "1"}}
	mountV2 = core.MountInfo{Path: "secret/", Type: "kv", Options: map[string]string{"version": "2"}}
)

// newV2 mounts a fresh version 2 engine.
func newV2(t *testing.T) *enginetest.Client {
	t.Helper()
	_, c := enginetest.MustSetup(t, New, mountV2)
	return c
}

// newV1 mounts a fresh version 1 engine.
func newV1(t *testing.T) *enginetest.Client {
	t.Helper()
	_, c := enginetest.MustSetup(t, New, mountV1)
	return c
}

// must returns a function that fails the test when a call's error is set,
// and returns the call's response: must(t)(c.Read(path, nil)).
func must(t *testing.T) func(*core.Response, error) *core.Response {
	t.Helper()
	return func(resp *core.Response, err error) *core.Response {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return resp
	}
}

// wantErr fails unless err has code and, when msg is set, contains msg.
func wantErr(t *testing.T, err error, code core.Code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s %q", code, msg)
	}
	if core.CodeOf(err) != code {
		t.Fatalf("error %q has code %s, want %s", err, core.CodeOf(err), code)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not contain %q", err, msg)
	}
}

// want404 returns a function checking that a call answered a 404 response
// carrying data (a deleted or destroyed version), and returning the data.
func want404(t *testing.T) func(*core.Response, error) map[string]any {
	t.Helper()
	return func(resp *core.Response, err error) map[string]any {
		t.Helper()
		if err != nil {
			t.Fatalf("want a 404 response with data, got error %v", err)
		}
		if resp == nil || resp.StatusCode != 404 || resp.Data == nil {
			t.Fatalf("want a 404 response with data, got %+v", resp)
		}
		return resp.Data
	}
}

// put writes data to data/<path> and returns the new version's metadata.
func put(t *testing.T, c *enginetest.Client, path string, data map[string]any, opts ...map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{"data": data}
	if len(opts) > 0 {
		body["options"] = opts[0]
	}
	return must(t)(c.Write("data/"+path, body)).Data
}

// readData reads data/<path> (with an optional version) and returns data and
// metadata.
func readData(t *testing.T, c *enginetest.Client, path string, version ...int) (map[string]any, map[string]any) {
	t.Helper()
	var q map[string]any
	if len(version) > 0 {
		q = map[string]any{"version": version[0]}
	}
	resp := must(t)(c.Read("data/"+path, q))
	d, _ := resp.Data["data"].(map[string]any)
	m, _ := resp.Data["metadata"].(map[string]any)
	return d, m
}

// asJSON normalises v through JSON so that json.Number, int and float
// values compare equal.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func equalJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := asJSON(t, got), asJSON(t, want); !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

func TestConformanceV1(t *testing.T) {
	enginetest.RunConformance(t, New, mountV1, enginetest.WithPersistence(
		func(tb testing.TB, c *enginetest.Client) {
			c.MustCall(tb, core.OpUpdate, "app/db", map[string]any{"password": "s3cr3t", "ttl": "1h"})
			c.MustCall(tb, core.OpUpdate, "app/api/key", map[string]any{"k": 1})
		},
		enginetest.Probe{Op: core.OpRead, Path: "app/db"},
		enginetest.Probe{Op: core.OpList, Path: "app/"},
	))
}

func TestConformanceV2(t *testing.T) {
	enginetest.RunConformance(t, New, mountV2, enginetest.WithPersistence(
		func(tb testing.TB, c *enginetest.Client) {
			c.MustCall(tb, core.OpUpdate, "config", map[string]any{"max_versions": 3})
			for _, v := range []string{"a", "b", "c", "d"} {
				c.MustCall(tb, core.OpUpdate, "data/app/db", map[string]any{"data": map[string]any{"v": v}})
			}
			c.MustCall(tb, core.OpUpdate, "metadata/app/db", map[string]any{"custom_metadata": map[string]any{"owner": "ops"}})
			c.MustCall(tb, core.OpDelete, "data/app/db", nil)
			c.MustCall(tb, core.OpUpdate, "data/app/x", map[string]any{"data": map[string]any{"n": map[string]any{"m": 1}}})
		},
		enginetest.Probe{Op: core.OpRead, Path: "config"},
		enginetest.Probe{Op: core.OpRead, Path: "data/app/db"},
		enginetest.Probe{Op: core.OpRead, Path: "data/app/db", Data: map[string]any{"version": 3}},
		enginetest.Probe{Op: core.OpRead, Path: "metadata/app/db"},
		enginetest.Probe{Op: core.OpList, Path: "metadata/app/"},
		enginetest.Probe{Op: core.OpRead, Path: "subkeys/app/x"},
	))
}

func TestSetupRejectsUnknownVersion(t *testing.T) {
	c := newV2(t)
	env := c.Env()
	env.Mount.Options = map[string]string{"version": "3"}
	err := New().Setup(t.Context(), env)
	wantErr(t, err, core.CodeInvalid, `invalid KV version "3"`)
}

func TestVersionSelectsRoutes(t *testing.T) {
	// An empty version option means 1, as in Vault.
	_, c := enginetest.MustSetup(t, New, core.MountInfo{Path: "kv/", Type: "kv"})
	clientRoutes := 0
	for _, r := range c.Routes() {
		if !r.Internal {
			clientRoutes++
		}
	}
	if clientRoutes != 1 {
		t.Errorf("version \"\" has %d client routes, want the single v1 route", clientRoutes)
	}
	must(t)(c.Write("config", map[string]any{"a": "b"})) // a plain v1 secret named "config"

	v2 := newV2(t)
	var patterns []string
	for _, r := range v2.Routes() {
		patterns = append(patterns, r.Pattern)
	}
	for _, want := range []string{"config", "data/", "delete/", "undelete/", "destroy/", "metadata", "subkeys/"} {
		if !strings.Contains(strings.Join(patterns, " "), want) {
			t.Errorf("v2 routes %v lack %q", patterns, want)
		}
	}
	_, err := v2.Read("foo", nil)
	if !errors.Is(err, core.ErrUnsupportedPath) {
		t.Errorf("v2 read of a bare path: %v, want unsupported path", err)
	}
	// data/ needs a path: an empty or trailing-slash one matches no route.
	for _, p := range []string{"data/", "data/foo/"} {
		if _, err := v2.Write(p, map[string]any{"data": map[string]any{"a": 1}}); !errors.Is(err, core.ErrUnsupportedPath) {
			t.Errorf("write %q: %v, want unsupported path", p, err)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for p, want := range map[string]string{
		"a":         "",
		"a/b.c/d-e": "",
		"..a/b..":   "",
		"":          "missing path",
		"a/../b":    `".." path segments`,
		"..":        `".." path segments`,
		"./a":       `"." path segments`,
		"a//b":      "empty path segment",
		"/a":        "empty path segment",
		"a/":        "empty path segment",
	} {
		err := checkPath(p)
		switch {
		case want == "" && err != nil:
			t.Errorf("checkPath(%q) = %v, want nil", p, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || core.CodeOf(err) != core.CodeInvalid):
			t.Errorf("checkPath(%q) = %v, want an invalid error containing %q", p, err, want)
		}
	}
}

func TestBadPathsRejected(t *testing.T) {
	c := newV2(t)
	body := map[string]any{"data": map[string]any{"a": "b"}}
	for _, p := range []string{"data/a/../b", "data/../x", "data/a//b", "metadata/..", "delete/a/./b"} {
		_, err := c.Write(p, body)
		wantErr(t, err, core.CodeInvalid, "path segment")
	}
	v1 := newV1(t)
	_, err := v1.Write("a/../b", map[string]any{"a": "b"})
	wantErr(t, err, core.CodeInvalid, "path segment")
	_, err = v1.Write("", map[string]any{"a": "b"})
	wantErr(t, err, core.CodeInvalid, "missing path")
}

// TestFieldValidation checks that wrong types are refused with a 400 by the
// framework before the handler runs.
func TestFieldValidation(t *testing.T) {
	c := newV2(t)
	for _, tc := range []struct {
		path string
		body map[string]any
	}{
		{"data/a", map[string]any{"data": "not a map"}},
		{"data/a", map[string]any{"data": []any{1, 2}}},
		{"data/a", map[string]any{"data": map[string]any{"a": 1}, "options": 5}},
		{"config", map[string]any{"max_versions": "many"}},
		{"config", map[string]any{"cas_required": "perhaps"}},
		{"config", map[string]any{"delete_version_after": "soon"}},
		{"metadata/a", map[string]any{"max_versions": 1.5}},
		{"metadata/a", map[string]any{"delete_version_after": "-1h"}},
		{"metadata/a", map[string]any{"custom_metadata": true}},
		{"delete/a", map[string]any{"versions": "one"}},
	} {
		_, err := c.Write(tc.path, tc.body)
		if core.CodeOf(err) != core.CodeInvalid || !strings.Contains(err.Error(), "error converting input") {
			t.Errorf("write %s %v: err = %v, want a framework conversion error", tc.path, tc.body, err)
		}
	}
	_, err := c.Read("data/a", map[string]any{"version": "latest"})
	wantErr(t, err, core.CodeInvalid, "error converting input")
}

// TestHandlersRequireSetup checks handlers fail cleanly on an engine that
// was never set up.
func TestHandlersRequireSetup(t *testing.T) {
	b := &Backend{}
	d := framework.NewFieldData(map[string]any{"path": "a"}, map[string]*framework.FieldSchema{"path": pathField()})
	_, err := b.dataRead(t.Context(), &core.Request{}, d)
	wantErr(t, err, core.CodeUnavailable, "not set up")
	if err := b.UpgradeToV2(t.Context()); core.CodeOf(err) != core.CodeUnavailable {
		t.Errorf("UpgradeToV2 before Setup: %v", err)
	}
}
