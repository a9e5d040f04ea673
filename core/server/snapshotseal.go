package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// snapshotKeyPath holds the HMAC key that seals snapshot archives. It lives
// in the barrier, so it travels inside snapshots and only this cluster (or a
// restore of its snapshot) holds it.
const snapshotKeyPath = "core/snapshot-hmac-key"

const sealedPrefix = "vigil-hmac-sha256:"

// snapshotSealer implements raftstore.SnapshotSealer with the barrier key.
type snapshotSealer struct{ s *Server }

func (ss snapshotSealer) key(create bool) ([]byte, error) {
	ctx := context.Background()
	k, err := ss.s.barrier.Get(ctx, snapshotKeyPath)
	if err != nil {
		return nil, err
	}
	if k != nil || !create {
		return k, nil
	}
	k = make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := ss.s.barrier.Put(ctx, snapshotKeyPath, k); err != nil {
		return nil, err
	}
	return k, nil
}

func (ss snapshotSealer) Seal(sums []byte) ([]byte, error) {
	k, err := ss.key(true)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, k)
	m.Write(sums)
	return []byte(sealedPrefix + hex.EncodeToString(m.Sum(nil)) + "\n"), nil
}

func (ss snapshotSealer) Verify(sums, sealed []byte) error {
	got := strings.TrimSpace(string(sealed))
	if !strings.HasPrefix(got, sealedPrefix) {
		return errors.New("unknown seal format")
	}
	k, err := ss.key(false)
	if err != nil {
		return err
	}
	if k == nil {
		return errors.New("this cluster has never sealed a snapshot")
	}
	m := hmac.New(sha256.New, k)
	m.Write(sums)
	want := sealedPrefix + hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(got), []byte(want)) {
		return errors.New("seal mismatch")
	}
	return nil
}
