package kv

import (
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestDeleteAndUndeleteVersions(t *testing.T) {
	c := newV2(t)
	for i := 1; i <= 3; i++ {
		put(t, c, "k", map[string]any{"i": i})
	}
	c.Clock.Advance(time.Minute)
	// Versions as a list, including one that does not exist.
	if resp := must(t)(c.Write("delete/k", map[string]any{"versions": []any{1, 2, 99}})); resp != nil {
		t.Errorf("delete returned %+v, want no body", resp)
	}
	for _, v := range []int{1, 2} {
		body := want404(t)(c.Read("data/k", map[string]any{"version": v}))
		md := body["metadata"].(map[string]any)
		if md["deletion_time"] != enginetest.Epoch.Add(time.Minute).Format(time.RFC3339Nano) {
			t.Errorf("version %d deletion_time = %v", v, md["deletion_time"])
		}
	}
	data, _ := readData(t, c, "k")
	equalJSON(t, "current version", data, map[string]any{"i": 3})

	// Versions as a comma-separated string, as the CLI sends them.
	must(t)(c.Write("undelete/k", map[string]any{"versions": "1,2"}))
	for _, v := range []int{1, 2} {
		data, _ := readData(t, c, "k", v)
		equalJSON(t, "undeleted", data, map[string]any{"i": v})
	}

	_, err := c.Write("delete/k", map[string]any{})
	wantErr(t, err, core.CodeInvalid, "No version number provided")
	_, err = c.Write("undelete/k", map[string]any{"versions": []any{}})
	wantErr(t, err, core.CodeInvalid, "No version number provided")
	// A missing key is not an error.
	must(t)(c.Write("delete/missing", map[string]any{"versions": []any{1}}))
	must(t)(c.Write("undelete/missing", map[string]any{"versions": []any{1}}))
	if _, err := c.Read("metadata/missing", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("delete/undelete of a missing key created it: %v", err)
	}
}

func TestDestroyVersions(t *testing.T) {
	c := newV2(t)
	put(t, c, "k", map[string]any{"i": 1})
	put(t, c, "k", map[string]any{"i": 2})
	if resp := must(t)(c.Write("destroy/k", map[string]any{"versions": []any{1}})); resp != nil {
		t.Errorf("destroy returned %+v, want no body", resp)
	}
	body := want404(t)(c.Read("data/k", map[string]any{"version": 1}))
	md := body["metadata"].(map[string]any)
	if md["destroyed"] != true || md["deletion_time"] != "" {
		t.Errorf("destroyed version metadata: %v", md)
	}
	if v, _ := c.View.Get(t.Context(), versionKey("k", 1)); v != nil {
		t.Error("destroy left the version's data in storage")
	}
	if v, _ := c.View.Get(t.Context(), versionKey("k", 2)); v == nil {
		t.Error("destroy removed another version's data")
	}
	// A destroyed version cannot be undeleted.
	must(t)(c.Write("undelete/k", map[string]any{"versions": []any{1}}))
	want404(t)(c.Read("data/k", map[string]any{"version": 1}))
	versions := must(t)(c.Read("metadata/k", nil)).Data["versions"].(map[string]any)
	if versions["1"].(map[string]any)["destroyed"] != true {
		t.Errorf("metadata versions: %v", versions)
	}

	// Destroying the current version; deleting it afterwards is a no-op.
	must(t)(c.Write("destroy/k", map[string]any{"versions": "2"}))
	must(t)(c.Delete("data/k", nil))
	body = want404(t)(c.Read("data/k", nil))
	if md := body["metadata"].(map[string]any); md["destroyed"] != true || md["deletion_time"] != "" {
		t.Errorf("destroyed current version: %v", md)
	}

	_, err := c.Write("destroy/k", map[string]any{"versions": []any{}})
	wantErr(t, err, core.CodeInvalid, "No version number provided")
	must(t)(c.Write("destroy/missing", map[string]any{"versions": []any{1}}))
}

func TestUndeleteRestartsDeleteVersionAfter(t *testing.T) {
	c := newV2(t)
	must(t)(c.Write("config", map[string]any{"delete_version_after": 600}))
	put(t, c, "k", map[string]any{"v": 1})
	c.Clock.Advance(time.Hour)
	want404(t)(c.Read("data/k", nil))

	must(t)(c.Write("undelete/k", map[string]any{"versions": []any{1}}))
	_, md := readData(t, c, "k")
	if want := c.Clock.Now().Add(10 * time.Minute).Format(time.RFC3339Nano); md["deletion_time"] != want {
		t.Errorf("undeleted deletion_time = %v, want %v", md["deletion_time"], want)
	}
	c.Clock.Advance(10 * time.Minute)
	want404(t)(c.Read("data/k", nil))
}
