package server

import (
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/storage"
)

// StorageForTest gives this package's tests the barrier's storage, which
// the server hands subsystems through Host.Storage only.
func (s *Server) StorageForTest() storage.Storage { return barrierStorage{s.barrier} }

// RaftForTest gives this package's tests the raft store.
func (s *Server) RaftForTest() *raftstore.Store { return s.raft }
