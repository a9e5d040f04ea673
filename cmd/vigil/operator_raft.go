package main

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func init() {
	registerGroup("operator raft", "Manage the raft storage")
	registerGroup("operator raft snapshot", "Save and restore raft storage snapshots")
	register(&command{name: "operator raft snapshot save", synopsis: "Save a snapshot of the raft storage to a file", run: runSnapshotSave})
	register(&command{name: "operator raft snapshot restore", synopsis: "Restore the raft storage from a snapshot file", run: runSnapshotRestore})
}

// runSnapshotSave is `vigil operator raft snapshot save FILE`. The snapshot
// is streamed to a temporary file beside FILE, checked (gzip and tar framing
// complete, checksum entry present) and only then renamed over FILE, so a
// failed save never leaves a truncated snapshot behind.
func runSnapshotSave(args []string) int {
	var cf clientFlags
	fs := newFlags("operator raft snapshot save", &cf)
	setUsage(fs, "operator raft snapshot save [options] FILE", `
Saves a snapshot of the current state of the raft storage into FILE.
Requires a root (sudo) token.

    $ vigil operator raft snapshot save backup.snap`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	path := strings.TrimSpace(pos[0])
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fail("creating snapshot file: %v", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	resp, err := client.Logical().ReadRaw("sys/storage/raft/snapshot")
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		_ = tmp.Close()
		return apiError("taking the snapshot", err)
	}
	_, err = io.Copy(tmp, resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail("taking the snapshot: %v", err)
	}
	if err := checkSnapshotFile(tmp.Name()); err != nil {
		return fail("taking the snapshot: incomplete snapshot: %v", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fail("%v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail("saving the snapshot: %v", err)
	}
	return 0
}

// checkSnapshotFile verifies that a snapshot archive is complete: it
// decompresses and untars to the end and holds a non-empty checksum entry
// (SHA256SUMS, or Vault's SHA256SUMS.sealed).
func checkSnapshotFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	sums := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, tr)
		if err != nil {
			return err
		}
		if (h.Name == "SHA256SUMS" || h.Name == "SHA256SUMS.sealed") && n > 0 {
			sums = true
		}
	}
	if !sums {
		return errors.New("no checksum entry")
	}
	return nil
}

// runSnapshotRestore is `vigil operator raft snapshot restore [-force] FILE`.
func runSnapshotRestore(args []string) int {
	var cf clientFlags
	fs := newFlags("operator raft snapshot restore", &cf)
	setUsage(fs, "operator raft snapshot restore [options] FILE", `
Installs the snapshot in FILE, returning the storage to the state it
records. The server verifies the snapshot before replacing anything; a
corrupted file is rejected and the current data is kept. Requires a root
(sudo) token.

    $ vigil operator raft snapshot restore backup.snap`)
	force := fs.Bool("force", false, "install the snapshot even if it was taken from a different cluster (uses snapshot-force)")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	f, err := os.Open(strings.TrimSpace(pos[0]))
	if err != nil {
		return fail("opening snapshot file: %v", err)
	}
	defer f.Close()
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if err := client.Sys().RaftSnapshotRestore(f, *force); err != nil {
		return apiError("installing the snapshot", err)
	}
	return 0
}
