package lease

import (
	"context"
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/core/storage"
)

// MovePrefix re-keys every lease whose ID starts with from (a mount path,
// ending in "/") to start with to instead, with its request and mount paths,
// for a mount moved by sys/remount. Each lease is moved in one transaction
// (new key and index written, old ones deleted) and rescheduled.
func (m *Manager) MovePrefix(ctx context.Context, from, to string) error {
	ids, err := m.List(ctx, from)
	if err != nil {
		return err
	}
	for _, id := range ids {
		e, err := m.get(ctx, id)
		if err != nil {
			return err
		}
		if e == nil {
			continue
		}
		old := *e
		e.LeaseID = to + strings.TrimPrefix(e.LeaseID, from)
		if strings.HasPrefix(e.Path, from) {
			e.Path = to + strings.TrimPrefix(e.Path, from)
		}
		if e.MountPath == from {
			e.MountPath = to
		}
		b, err := jsonMarshal(e)
		if err != nil {
			return err
		}
		ops := []storage.TxnOp{{Kind: storage.OpPut, Key: leaseKey(e.LeaseID), Value: b}, {Kind: storage.OpDelete, Key: leaseKey(old.LeaseID)}}
		if e.TokenHash != "" {
			ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: tokenKey(e.TokenHash, e.LeaseID), Value: []byte(e.LeaseID)},
				storage.TxnOp{Kind: storage.OpDelete, Key: tokenKey(old.TokenHash, old.LeaseID)})
		}
		if err := storage.Txn(ctx, m.cfg.Storage, ops); err != nil {
			return fmt.Errorf("lease: move %s: %w", id, err)
		}
		m.unschedule(old.LeaseID)
		if !e.Irrevocable {
			m.schedule(e.LeaseID, nextAction(e))
		}
	}
	return nil
}
