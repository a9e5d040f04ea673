package raftstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

func TestSaveSnapshotWithInspectsTheSavedState(t *testing.T) {
	ctx := context.Background()
	s := MustNode(t)
	s.SetSnapshotSealer(hmacSealer{key: []byte("cluster-a")})
	mustPut(t, s, "a/1", "x", "a/2", "y", "a/b/3", "z", "b", "w")
	var seen struct {
		Index uint64   `json:"index"`
		A     int      `json:"a"`
		List  []string `json:"list"`
		Value string   `json:"value"`
	}
	var buf bytes.Buffer
	info, err := s.SaveSnapshotWith(ctx, &buf, SaveOptions{Inspect: func(ctx context.Context, v *View) (json.RawMessage, error) {
		if err := v.Put(ctx, "x", []byte("y")); !errors.Is(err, storage.ErrReadOnly) {
			t.Errorf("Put on a view: %v", err)
		}
		val, _ := v.Get(ctx, "b")
		list, _ := v.List(ctx, "a/")
		seen.Index, seen.A, seen.List, seen.Value = v.Index(), v.Count("a/"), list, string(val)
		return json.Marshal(seen)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if seen.A != 3 || seen.Value != "w" || len(seen.List) != 3 || seen.Index != info.Index || info.Index != s.AppliedIndex() {
		t.Fatalf("inspect saw %+v, info %+v, applied %d", seen, info, s.AppliedIndex())
	}
	mustPut(t, s, "a/4", "later")

	got, err := s.VerifyArchive(ctx, bytes.NewReader(buf.Bytes()), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != info.Index || got.StateSHA256 != info.StateSHA256 || !bytes.Equal(got.Attachments, info.Attachments) {
		t.Fatalf("VerifyArchive = %+v, saved %+v", got, info)
	}
	var back struct {
		A int `json:"a"`
	}
	if err := json.Unmarshal(got.Attachments, &back); err != nil || back.A != 3 {
		t.Fatalf("attachments %s: %v", got.Attachments, err)
	}

	// One flipped byte anywhere is rejected; another cluster's seal needs force.
	bad := append([]byte(nil), buf.Bytes()...)
	bad[len(bad)/2] ^= 0x40
	if _, err := s.VerifyArchive(ctx, bytes.NewReader(bad), "", false); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("corrupt archive: want CodeInvalid, got %v", err)
	}
	other := MustNode(t)
	other.SetSnapshotSealer(hmacSealer{key: []byte("cluster-b")})
	if _, err := other.VerifyArchive(ctx, bytes.NewReader(buf.Bytes()), "", false); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("foreign archive: want CodeInvalid, got %v", err)
	}
	if _, err := other.VerifyArchive(ctx, bytes.NewReader(buf.Bytes()), "", true); err != nil {
		t.Fatalf("foreign archive with force: %v", err)
	}
}

func TestSaveSnapshotWithInspectErrorAborts(t *testing.T) {
	s := MustNode(t)
	var buf bytes.Buffer
	boom := errors.New("boom")
	_, err := s.SaveSnapshotWith(context.Background(), &buf, SaveOptions{Inspect: func(context.Context, *View) (json.RawMessage, error) {
		return nil, boom
	}})
	if !errors.Is(err, boom) || buf.Len() != 0 {
		t.Fatalf("err %v, %d bytes written", err, buf.Len())
	}
	if _, err := s.SaveSnapshotWith(context.Background(), &buf, SaveOptions{Inspect: func(context.Context, *View) (json.RawMessage, error) {
		return json.RawMessage("{not json"), nil
	}}); core.CodeOf(err) != core.CodeInternal {
		t.Fatalf("invalid attachments: %v", err)
	}
}
