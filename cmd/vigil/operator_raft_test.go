package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRaftSnapshotSaveRestore(t *testing.T) {
	mustCLIServer(t)
	dir := t.TempDir()
	snap := filepath.Join(dir, "backup.snap")

	mustOK(t, "kv", "put", "secret/keep", "v=before")
	if out := mustOK(t, "operator", "raft", "snapshot", "save", snap); out != "" {
		t.Fatalf("save printed %q", out)
	}
	fi, err := os.Stat(snap)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("snapshot file mode %v size %d", fi.Mode().Perm(), fi.Size())
	}
	if err := checkSnapshotFile(snap); err != nil {
		t.Fatalf("saved snapshot is incomplete: %v", err)
	}

	// Change things after the snapshot.
	mustOK(t, "kv", "put", "secret/keep", "v=after")
	mustOK(t, "kv", "put", "secret/later", "v=x")

	// A corrupted snapshot is refused with the server's message; data intact.
	b, _ := os.ReadFile(snap)
	b[len(b)/2] ^= 0xff
	bad := filepath.Join(dir, "bad.snap")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "operator", "raft", "snapshot", "restore", bad).wantCode(t, 2, "Error installing the snapshot", "Code: 400")
	if got := mustOK(t, "kv", "get", "-field=v", "secret/keep"); got != "after" {
		t.Fatalf("data changed by a rejected restore: %q", got)
	}

	// The real snapshot brings the old state back.
	mustOK(t, "operator", "raft", "snapshot", "restore", snap)
	if got := mustOK(t, "kv", "get", "-field=v", "secret/keep"); got != "before" {
		t.Fatalf("after restore: %q", got)
	}
	runCLI(t, "kv", "get", "secret/later").wantCode(t, 2, "No value found at secret/data/later")

	// -force uses snapshot-force and works the same on this cluster.
	mustOK(t, "operator", "raft", "snapshot", "restore", "-force", snap)
}

func TestRaftSnapshotErrors(t *testing.T) {
	s := mustCLIServer(t)
	dir := t.TempDir()
	runCLI(t, "operator", "raft", "snapshot", "save").wantCode(t, 1, "Not enough arguments")
	runCLI(t, "operator", "raft", "snapshot", "restore", filepath.Join(dir, "missing")).wantCode(t, 2, "opening snapshot file")
	runCLI(t, "operator", "raft", "snapshot", "save", filepath.Join(dir, "no", "such", "dir", "s.snap")).wantCode(t, 2)

	// A non-root token is refused (sudo path) and no file is left behind.
	child := s.NewClient(s.RootToken)
	sec, err := child.Auth().Token().Create(&vaultapiTokenReq)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TOKEN", sec.Auth.ClientToken)
	out := filepath.Join(dir, "denied.snap")
	runCLI(t, "operator", "raft", "snapshot", "save", out).wantCode(t, 2, "Code: 403")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files left behind: %v", entries)
	}
}
