package main

import (
	"fmt"
)

func init() {
	register(&command{name: "operator raft snapshot test", synopsis: "Test that a snapshot restores, and record the result", run: runSnapshotTest})
}

// runSnapshotTest is `vigil operator raft snapshot test`: the server takes
// a snapshot, restores it into a scratch raft store in a temporary folder,
// checks that the barrier keyring and the seal configuration are present
// and that the key count matches, and records the result for the
// compliance check "no snapshot restore test recorded".
func runSnapshotTest(args []string) int {
	var cf clientFlags
	fs := newFlags("operator raft snapshot test", &cf)
	setUsage(fs, "operator raft snapshot test [options]", `
Takes a snapshot on the server, restores it into a scratch store, verifies
it and records the result (POST sys/storage/raft/snapshot-test). Requires a
root (sudo) token. Exits 2 when the test fails.

    $ vigil operator raft snapshot test`)
	_, code, ok := cf.parse(fs, args, 0, 0)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	s, err := client.Logical().Write("sys/storage/raft/snapshot-test", nil)
	if err != nil {
		return apiError("testing the snapshot", err)
	}
	if s == nil || s.Data == nil {
		return fail("testing the snapshot: empty response")
	}
	if rc := cf.output(s.Data); rc != 0 {
		return rc
	}
	if ok, _ := s.Data["ok"].(bool); !ok {
		fmt.Fprintf(stderr, "Error: the snapshot restore test FAILED: %v\n", s.Data["error"])
		return 2
	}
	return 0
}
