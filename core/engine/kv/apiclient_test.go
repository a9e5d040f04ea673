package kv

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

// vaultShim is a stand-in for Vigil's HTTP layer, just enough to drive one
// mount with the official vault/api client: it maps methods to operations
// as Vault does (GET read, ?list=true and LIST list, POST/PUT update, PATCH
// patch, DELETE delete), adds the trailing "/" Vault adds to list paths, and
// writes Vault's response envelope and error shape. It lets these tests
// check that the engine's JSON shapes parse in the client users already have.
type vaultShim struct {
	t *testing.T
	c *enginetest.Client
}

func (s *vaultShim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel, found := strings.CutPrefix(r.URL.Path, "/v1/"+s.c.Mount.Path)
	if !found {
		writeJSON(w, 404, map[string]any{"errors": []string{"no handler for route"}})
		return
	}
	var op core.Operation
	var data map[string]any
	query := func() {
		for k, v := range r.URL.Query() {
			if k != "list" && len(v) > 0 {
				if data == nil {
					data = map[string]any{}
				}
				data[k] = v[0]
			}
		}
	}
	switch r.Method {
	case http.MethodGet:
		op = core.OpRead
		if r.URL.Query().Get("list") == "true" {
			op = core.OpList
		}
		query()
	case "LIST":
		op = core.OpList
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		op = core.OpUpdate
		if r.Method == http.MethodPatch {
			op = core.OpPatch
			if ct := r.Header.Get("Content-Type"); ct != "application/merge-patch+json" {
				writeJSON(w, 415, map[string]any{"errors": []string{"PATCH requires application/merge-patch+json, got " + ct}})
				return
			}
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			s.t.Errorf("shim: read body: %v", err)
		}
		if len(body) > 0 {
			if err := enginetest.UnmarshalJSON(body, &data); err != nil {
				writeJSON(w, 400, map[string]any{"errors": []string{err.Error()}})
				return
			}
		}
	case http.MethodDelete:
		op = core.OpDelete
		query()
	default:
		writeJSON(w, 405, map[string]any{"errors": []string{"unsupported method"}})
		return
	}
	if op == core.OpList && rel != "" && !strings.HasSuffix(rel, "/") {
		rel += "/"
	}
	resp, err := s.c.Call(r.Context(), op, rel, data)
	if err != nil {
		errs := []string{}
		var ce *core.Error
		if !errors.As(err, &ce) || ce.Msg != "" || ce.Err != nil {
			errs = append(errs, core.ClientMessage(err))
		}
		writeJSON(w, core.HTTPStatus(core.CodeOf(err)), map[string]any{"errors": errs})
		return
	}
	if resp.IsEmpty() {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	status := http.StatusOK
	if resp.StatusCode != 0 {
		status = resp.StatusCode
	}
	env := map[string]any{
		"request_id": "shim", "lease_id": "", "renewable": false, "lease_duration": 0,
		"data": resp.Data, "wrap_info": nil, "warnings": resp.Warnings, "auth": nil, "mount_type": "kv",
	}
	if resp.Secret != nil {
		env["lease_duration"] = int64(resp.Secret.TTL / time.Second)
		env["renewable"] = resp.Secret.Renewable
	}
	writeJSON(w, status, env)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newVaultClient serves c's mount over HTTP and returns a vault/api client
// for it.
func newVaultClient(t *testing.T, c *enginetest.Client) *vault.Client {
	t.Helper()
	srv := httptest.NewServer(&vaultShim{t: t, c: c})
	t.Cleanup(srv.Close)
	cfg := vault.DefaultConfig()
	cfg.Address = srv.URL
	cfg.MaxRetries = 0
	client, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client.SetToken("root")
	return client
}

func TestVaultAPIClientKVv2(t *testing.T) {
	c := newV2(t)
	kv := newVaultClient(t, c).KVv2("secret")
	ctx := t.Context()

	s, err := kv.Put(ctx, "app/db", map[string]any{"user": "u", "pass": "p1"})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if s.VersionMetadata.Version != 1 || !s.VersionMetadata.CreatedTime.Equal(enginetest.Epoch) || !s.VersionMetadata.DeletionTime.IsZero() {
		t.Errorf("Put metadata: %+v", s.VersionMetadata)
	}
	c.Clock.Advance(time.Minute)
	if _, err := kv.Put(ctx, "app/db", map[string]any{"user": "u", "pass": "p2"}, vault.WithCheckAndSet(1)); err != nil {
		t.Fatalf("Put with cas: %v", err)
	}
	_, err = kv.Put(ctx, "app/db", map[string]any{"x": 1}, vault.WithCheckAndSet(1))
	if err == nil || !strings.Contains(err.Error(), "check-and-set parameter did not match the current version") {
		t.Errorf("Put with a stale cas: %v", err)
	}

	got, err := kv.Get(ctx, "app/db")
	if err != nil || got.Data["pass"] != "p2" || got.VersionMetadata.Version != 2 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	old, err := kv.GetVersion(ctx, "app/db", 1)
	if err != nil || old.Data["pass"] != "p1" {
		t.Fatalf("GetVersion(1) = %+v, %v", old, err)
	}
	if _, err := kv.GetVersion(ctx, "app/db", 9); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Errorf("GetVersion(9): %v, want ErrSecretNotFound", err)
	}
	if _, err := kv.Get(ctx, "nothing"); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Errorf("Get of a missing secret: %v, want ErrSecretNotFound", err)
	}

	// Patch over HTTP PATCH, then the read-then-write fallback.
	if p, err := kv.Patch(ctx, "app/db", map[string]any{"pass": "p3", "user": nil}); err != nil || p.VersionMetadata.Version != 3 {
		t.Fatalf("Patch = %+v, %v", p, err)
	}
	if _, err := kv.Patch(ctx, "app/db", map[string]any{"extra": "e"}, vault.WithMergeMethod(vault.KVMergeMethodReadWrite)); err != nil {
		t.Fatalf("Patch rw: %v", err)
	}
	got, _ = kv.Get(ctx, "app/db")
	if want := map[string]any{"pass": "p3", "extra": "e"}; !reflect.DeepEqual(got.Data, want) {
		t.Errorf("after patches: %v, want %v", got.Data, want)
	}
	if _, err := kv.Patch(ctx, "missing", map[string]any{"a": "b"}); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Errorf("Patch of a missing secret: %v, want ErrSecretNotFound", err)
	}

	// Metadata.
	err = kv.PutMetadata(ctx, "app/db", vault.KVMetadataPutInput{MaxVersions: 7, DeleteVersionAfter: 5 * time.Hour,
		CustomMetadata: map[string]any{"owner": "ops"}})
	if err != nil {
		t.Fatalf("PutMetadata: %v", err)
	}
	casRequired := false
	if err := kv.PatchMetadata(ctx, "app/db", vault.KVMetadataPatchInput{CASRequired: &casRequired, CustomMetadata: map[string]any{"team": "a"}}); err != nil {
		t.Fatalf("PatchMetadata: %v", err)
	}
	md, err := kv.GetMetadata(ctx, "app/db")
	if err != nil {
		t.Fatalf("GetMetadata: %v", err)
	}
	if md.CurrentVersion != 4 || md.MaxVersions != 7 || md.DeleteVersionAfter != 5*time.Hour || md.OldestVersion != 0 ||
		!md.CreatedTime.Equal(enginetest.Epoch) || !md.UpdatedTime.Equal(enginetest.Epoch.Add(time.Minute)) ||
		!reflect.DeepEqual(md.CustomMetadata, map[string]any{"owner": "ops", "team": "a"}) || len(md.Versions) != 4 {
		t.Errorf("GetMetadata = %+v", md)
	}
	got, _ = kv.Get(ctx, "app/db")
	if got.CustomMetadata["owner"] != "ops" {
		t.Errorf("Get custom metadata = %v", got.CustomMetadata)
	}

	// Delete, undelete, destroy.
	if err := kv.Delete(ctx, "app/db"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	got, err = kv.Get(ctx, "app/db")
	if err != nil || got.Data != nil || got.VersionMetadata.DeletionTime.IsZero() {
		t.Fatalf("Get of a deleted version = %+v, %v; want nil data with a deletion time", got, err)
	}
	if err := kv.Undelete(ctx, "app/db", []int{4}); err != nil {
		t.Fatalf("Undelete: %v", err)
	}
	if got, _ = kv.Get(ctx, "app/db"); got.Data["extra"] != "e" {
		t.Errorf("after Undelete: %+v", got)
	}
	if err := kv.DeleteVersions(ctx, "app/db", []int{1}); err != nil {
		t.Fatalf("DeleteVersions: %v", err)
	}
	if err := kv.Destroy(ctx, "app/db", []int{2}); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	destroyed, err := kv.GetVersion(ctx, "app/db", 2)
	if err != nil || !destroyed.VersionMetadata.Destroyed || destroyed.Data != nil {
		t.Errorf("GetVersion of a destroyed version = %+v, %v", destroyed, err)
	}
	list, err := kv.GetVersionsAsList(ctx, "app/db")
	if err != nil || len(list) != 4 || list[0].Version != 1 || list[0].DeletionTime.IsZero() || !list[1].Destroyed {
		t.Errorf("GetVersionsAsList = %+v, %v", list, err)
	}

	// Rollback writes version 3's data as a new version.
	rb, err := kv.Rollback(ctx, "app/db", 3)
	if err != nil || rb.VersionMetadata.Version != 5 {
		t.Fatalf("Rollback = %+v, %v", rb, err)
	}
	if got, _ = kv.Get(ctx, "app/db"); !reflect.DeepEqual(got.Data, map[string]any{"pass": "p3"}) {
		t.Errorf("after Rollback: %v", got.Data)
	}

	// Listing through the logical client.
	if _, err := kv.Put(ctx, "app/other", map[string]any{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	ls, err := newVaultClient(t, c).Logical().ListWithContext(ctx, "secret/metadata/app")
	if err != nil || ls == nil || !reflect.DeepEqual(ls.Data["keys"], []any{"db", "other"}) {
		t.Errorf("List = %+v, %v", ls, err)
	}
	if ls, err := newVaultClient(t, c).Logical().ListWithContext(ctx, "secret/metadata/none"); ls != nil || err != nil {
		t.Errorf("List of an empty folder = %+v, %v; want nil, nil", ls, err)
	}

	if err := kv.DeleteMetadata(ctx, "app/db"); err != nil {
		t.Fatalf("DeleteMetadata: %v", err)
	}
	if _, err := kv.GetMetadata(ctx, "app/db"); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Errorf("GetMetadata after DeleteMetadata: %v", err)
	}
}

func TestVaultAPIClientKVv1(t *testing.T) {
	c := newV1(t)
	client := newVaultClient(t, c)
	kv := client.KVv1("kv")
	ctx := t.Context()
	if err := kv.Put(ctx, "app/db", map[string]any{"user": "u", "ttl": "30m"}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	s, err := kv.Get(ctx, "app/db")
	if err != nil || s.Data["user"] != "u" {
		t.Fatalf("Get = %+v, %v", s, err)
	}
	if s.Raw.LeaseDuration != 1800 || s.Raw.Renewable || s.Raw.LeaseID != "" {
		t.Errorf("lease info = %d/%v/%q, want 1800s, not renewable, no lease id", s.Raw.LeaseDuration, s.Raw.Renewable, s.Raw.LeaseID)
	}
	ls, err := client.Logical().ListWithContext(ctx, "kv/app")
	if err != nil || ls == nil || !reflect.DeepEqual(ls.Data["keys"], []any{"db"}) {
		t.Errorf("List = %+v, %v", ls, err)
	}
	if err := kv.Delete(ctx, "app/db"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := kv.Get(ctx, "app/db"); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Errorf("Get after Delete: %v, want ErrSecretNotFound", err)
	}
}
