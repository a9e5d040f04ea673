package raftstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SnapshotSealer authenticates user-facing snapshot archives with a key the
// cluster holds (Vigil keeps it inside the barrier), so a restore can tell a
// snapshot of this cluster from one of another cluster or an altered one.
type SnapshotSealer interface {
	// Seal returns the bytes stored as SHA256SUMS.sealed for sums.
	Seal(sums []byte) ([]byte, error)
	// Verify checks sealed against sums; an error means "not ours".
	Verify(sums, sealed []byte) error
}

// SetSnapshotSealer installs the sealer used by SaveSnapshot and checked by
// RestoreSnapshot. Without one, archives carry an unkeyed digest and any
// well-formed archive is accepted.
func (s *Store) SetSnapshotSealer(ss SnapshotSealer) {
	s.sealerMu.Lock()
	s.sealer = ss
	s.sealerMu.Unlock()
}

type sealedSums struct{ sums, sealed []byte }

const unkeyedPrefix = "sha256:"

func (s *Store) sealSums(sums []byte) ([]byte, error) {
	s.sealerMu.RLock()
	ss := s.sealer
	s.sealerMu.RUnlock()
	if ss == nil {
		d := sha256.Sum256(sums)
		return []byte(unkeyedPrefix + hex.EncodeToString(d[:]) + "\n"), nil
	}
	return ss.Seal(sums)
}

func (s *Store) verifySealed(x *sealedSums) error {
	if x == nil || len(x.sealed) == 0 {
		return rejected("the archive has no %s entry (incomplete snapshot); restore it with snapshot-force if you trust it", entrySealed)
	}
	s.sealerMu.RLock()
	ss := s.sealer
	s.sealerMu.RUnlock()
	if ss == nil {
		d := sha256.Sum256(x.sums)
		if strings.TrimSpace(string(x.sealed)) != unkeyedPrefix+hex.EncodeToString(d[:]) {
			return rejected("%s does not match SHA256SUMS", entrySealed)
		}
		return nil
	}
	if err := ss.Verify(x.sums, x.sealed); err != nil {
		return rejected("%s was not sealed by this cluster (a snapshot of another cluster, or altered): %v; use snapshot-force to restore another cluster's snapshot", entrySealed, err)
	}
	return nil
}
