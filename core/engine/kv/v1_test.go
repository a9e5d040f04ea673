package kv

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

func TestV1ReadWriteDelete(t *testing.T) {
	c := newV1(t)
	body := map[string]any{"user": "u", "n": 1 << 60, "nested": map[string]any{"a": []any{1, "b"}}, "path": "in-body"}
	if resp := must(t)(c.Write("app/db", body)); resp != nil {
		t.Errorf("write answered %+v", resp)
	}
	resp := must(t)(c.Read("app/db", nil))
	equalJSON(t, "read", resp.Data, body)
	if n, _ := resp.Data["n"].(json.Number); n.String() != "1152921504606846976" {
		t.Errorf("n = %#v, want the exact integer", resp.Data["n"])
	}
	if resp.Secret != nil {
		t.Errorf("secret without ttl carries lease info %+v", resp.Secret)
	}
	// A write replaces the whole object.
	must(t)(c.Write("app/db", map[string]any{"only": "this"}))
	equalJSON(t, "after overwrite", must(t)(c.Read("app/db", nil)).Data, map[string]any{"only": "this"})

	if resp := must(t)(c.Delete("app/db", nil)); resp != nil {
		t.Errorf("delete answered %+v", resp)
	}
	if _, err := c.Read("app/db", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("read after delete: %v", err)
	}
	must(t)(c.Delete("app/db", nil))

	_, err := c.Write("app/db", map[string]any{})
	wantErr(t, err, core.CodeInvalid, "missing data fields")
	_, err = c.Read("a/../b", nil)
	wantErr(t, err, core.CodeInvalid, "path segment")
}

func TestV1TTL(t *testing.T) {
	c := newV1(t)
	for _, tc := range []struct {
		data map[string]any
		want *core.Secret
	}{
		{map[string]any{"v": 1, "ttl": "1h"}, &core.Secret{TTL: time.Hour, NoLease: true}},
		{map[string]any{"v": 1, "ttl": 90}, &core.Secret{TTL: 90 * time.Second, NoLease: true}},
		{map[string]any{"v": 1, "lease": "2m"}, &core.Secret{TTL: 2 * time.Minute, NoLease: true}},
		{map[string]any{"v": 1, "ttl": "soon"}, nil},
	} {
		must(t)(c.Write("k", tc.data))
		resp := must(t)(c.Read("k", nil))
		switch {
		case tc.want == nil && resp.Secret != nil:
			t.Errorf("%v: secret %+v, want none", tc.data, resp.Secret)
		case tc.want != nil && (resp.Secret == nil || resp.Secret.TTL != tc.want.TTL || resp.Secret.Renewable || resp.Secret.LeaseID != ""):
			t.Errorf("%v: secret %+v, want a non-renewable TTL of %s without lease", tc.data, resp.Secret, tc.want.TTL)
		}
		equalJSON(t, "ttl stays in the data", resp.Data, tc.data)
	}
}

func TestV1List(t *testing.T) {
	c := newV1(t)
	if _, err := c.List(""); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("empty mount list: %v", err)
	}
	for _, p := range []string{"a", "b/c", "b/d/e"} {
		must(t)(c.Write(p, map[string]any{"x": 1}))
	}
	for path, want := range map[string][]string{"": {"a", "b/"}, "b/": {"c", "d/"}, "b": {"c", "d/"}} {
		equalJSON(t, "list "+path, must(t)(c.List(path)).Data["keys"], want)
	}
	if _, err := c.List("zzz/"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("list of an empty folder: %v", err)
	}
}

func TestV1ExistenceCheck(t *testing.T) {
	c := newV1(t)
	if exists, has, err := c.Exists(t.Context(), "k", nil); !has || exists || err != nil {
		t.Fatalf("before write: exists=%v has=%v err=%v", exists, has, err)
	}
	must(t)(c.Write("k", map[string]any{"a": "b"}))
	if exists, _, _ := c.Exists(t.Context(), "k", nil); !exists {
		t.Error("after write: does not exist")
	}
}
