package kv

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
	"github.com/vigilsec/vigil/core/storage"
)

// v2Of returns mount with version 2.
func v2Of(mount core.MountInfo) core.MountInfo {
	mount.Options = maps.Clone(mount.Options)
	mount.Options["version"] = "2"
	return mount
}

func seedV1(t *testing.T, c *enginetest.Client) map[string]map[string]any {
	t.Helper()
	secrets := map[string]map[string]any{
		"a":     {"user": "u", "n": 1},
		"dir/b": {"nested": map[string]any{"x": true}},
		"dir/c": {"ttl": "1h", "v": "c"},
	}
	for p, d := range secrets {
		must(t)(c.Write(p, d))
	}
	return secrets
}

func TestUpgradeToV2(t *testing.T) {
	e, c := enginetest.MustSetup(t, New, mountV1)
	secrets := seedV1(t, c)
	c.Clock.Advance(42 * time.Nanosecond)

	up := e.(interface {
		UpgradeToV2(ctx context.Context) error
	})
	if err := up.UpgradeToV2(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Between the upgrade and the version 2 Setup, v1 requests are refused.
	_, err := c.Read("a", nil)
	wantErr(t, err, core.CodeUnavailable, "Upgrading from non-versioned to versioned data")
	_, err = c.Write("new", map[string]any{"a": 1})
	wantErr(t, err, core.CodeUnavailable, "Upgrading")

	c.Resetup(t, v2Of(mountV1))
	for p, want := range secrets {
		data, md := readData(t, c, p)
		equalJSON(t, "upgraded "+p, data, want)
		if md["version"] != 1 || md["created_time"] != enginetest.Epoch.Add(42).Format(time.RFC3339Nano) {
			t.Errorf("%s: metadata %v", p, md)
		}
	}
	equalJSON(t, "list", must(t)(c.List("metadata/")).Data["keys"], []string{"a", "dir/"})
	for k := range snapshot(t, c) {
		if strings.HasPrefix(k, v1Prefix) {
			t.Errorf("v1 copy %q left after the version 2 setup", k)
		}
	}
	// The upgraded mount is a normal v2 mount.
	w := put(t, c, "a", map[string]any{"user": "w"}, map[string]any{"cas": 1})
	if w["version"] != 2 {
		t.Errorf("write after upgrade: %v", w)
	}
	// Upgrading a version 2 engine is a no-op.
	if err := up.UpgradeToV2(t.Context()); err != nil {
		t.Errorf("second upgrade: %v", err)
	}
	data, _ := readData(t, c, "a")
	equalJSON(t, "after no-op upgrade", data, map[string]any{"user": "w"})
}

// TestUpgradeNotPersisted covers a tune whose new version was never
// persisted: the mount comes back as version 1 with its data intact, and a
// later upgrade discards the stale v2 copy.
func TestUpgradeNotPersisted(t *testing.T) {
	e, c := enginetest.MustSetup(t, New, mountV1)
	seedV1(t, c)
	if err := e.(*Backend).UpgradeToV2(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Restart as version 1.
	_, c = c.Reopen(t, New)
	equalJSON(t, "v1 data intact", must(t)(c.Read("a", nil)).Data, map[string]any{"user": "u", "n": 1})
	must(t)(c.Delete("dir/b", nil))
	must(t)(c.Write("a", map[string]any{"user": "changed"}))

	e, c = c.Reopen(t, New)
	if err := e.(*Backend).UpgradeToV2(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.Resetup(t, v2Of(mountV1))
	if _, err := c.Read("data/dir/b", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("secret deleted in v1 came back from a stale upgrade: %v", err)
	}
	data, _ := readData(t, c, "a")
	equalJSON(t, "latest v1 value", data, map[string]any{"user": "changed"})
}

// TestUpgradeFinishedBySetup covers a crash after the version 2 option was
// persisted: the version 2 Setup migrates what is left in the v1 layout.
func TestUpgradeFinishedBySetup(t *testing.T) {
	_, c := enginetest.MustSetup(t, New, mountV1)
	seedV1(t, c)
	c.Mount = v2Of(mountV1)
	_, c2 := c.Reopen(t, New)
	data, md := readData(t, c2, "dir/c")
	equalJSON(t, "migrated at setup", data, map[string]any{"ttl": "1h", "v": "c"})
	if md["version"] != 1 {
		t.Errorf("metadata %v", md)
	}
	keys, err := storage.ListAll(t.Context(), c2.View, v1Prefix)
	if err != nil || len(keys) != 0 {
		t.Errorf("v1 keys left: %v, %v", keys, err)
	}
}
