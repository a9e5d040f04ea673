package kv

import (
	"context"
	"fmt"
	"testing"

	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestTaggedKeys(t *testing.T) {
	e, c := enginetest.MustSetup(t, New, mountV2)
	for _, k := range []string{"a", "b/c", "b/d", "e"} {
		put(t, c, k, map[string]any{"v": 1})
	}
	tag := func(k string, md map[string]any) {
		must(t)(c.Write("metadata/"+k, map[string]any{"custom_metadata": md}))
	}
	tag("b/c", map[string]any{"phi": "TRUE"})
	tag("e", map[string]any{"regulated": "yes"})
	tag("a", map[string]any{"phi": "false", "owner": "x"})
	be := e.(*Backend)
	keys, trunc, err := be.TaggedKeys(context.Background(), []string{"phi", "regulated"}, 0)
	if err != nil || trunc || fmt.Sprint(keys) != "[b/c e]" {
		t.Fatalf("all: %v %v %v", keys, trunc, err)
	}
	keys, trunc, err = be.TaggedKeys(context.Background(), []string{"phi", "regulated"}, 1)
	if err != nil || !trunc || fmt.Sprint(keys) != "[b/c]" {
		t.Fatalf("limit 1: %v %v %v", keys, trunc, err)
	}
	e1, c1 := enginetest.MustSetup(t, New, mountV1)
	must(t)(c1.Write("a", map[string]any{"phi": "true"}))
	if keys, _, err := e1.(*Backend).TaggedKeys(context.Background(), []string{"phi"}, 0); err != nil || len(keys) != 0 {
		t.Fatalf("v1: %v %v", keys, err)
	}
}
