package kv

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestTaggedKeys(t *testing.T) {
	_, c := enginetest.MustSetup(t, New, mountV2)
	for _, k := range []string{"a", "b/c", "b/d", "e"} {
		put(t, c, k, map[string]any{"v": 1})
	}
	tag := func(k string, md map[string]any) {
		must(t)(c.Write("metadata/"+k, map[string]any{"custom_metadata": md}))
	}
	tag("b/c", map[string]any{"phi": "TRUE"})
	tag("e", map[string]any{"regulated": "yes"})
	tag("a", map[string]any{"phi": "false", "owner": "x"})
	tagged := func(c *enginetest.Client, tags []string, limit int) (string, any) {
		t.Helper()
		resp, err := c.CallInternal(context.Background(), "compliance-scope", core.OpRead, TaggedKeysPath, map[string]any{"tags": tags, "limit": limit})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(resp.Data["keys"]), resp.Data["truncated"]
	}
	if keys, trunc := tagged(c, []string{"phi", "regulated"}, 0); trunc != false || keys != "[b/c e]" {
		t.Fatalf("all: %v %v", keys, trunc)
	}
	if keys, trunc := tagged(c, []string{"phi", "regulated"}, 1); trunc != true || keys != "[b/c]" {
		t.Fatalf("limit 1: %v %v", keys, trunc)
	}
	// Clients cannot reach the route.
	if _, err := c.Read(TaggedKeysPath, nil); !errors.Is(err, core.ErrUnsupportedPath) {
		t.Fatalf("client read: %v", err)
	}
	_, c1 := enginetest.MustSetup(t, New, mountV1)
	must(t)(c1.Write("a", map[string]any{"phi": "true"}))
	if keys, _ := tagged(c1, []string{"phi"}, 0); keys != "[]" {
		t.Fatalf("v1: %v", keys)
	}
	// On version 1 the internal route does not hide a client's secret of
	// the same name.
	must(t)(c1.Write(TaggedKeysPath, map[string]any{"x": "y"}))
	if d := must(t)(c1.Read(TaggedKeysPath, nil)); d.Data["x"] != "y" {
		t.Fatalf("v1 secret named %s: %v", TaggedKeysPath, d)
	}
}
