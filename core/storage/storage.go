// Package storage defines the key/value interface shared by every storage
// layer in Vigil: the physical backend (Raft), the encrypted barrier on top of
// it, and the mount-scoped views handed to engines.
//
// Keys are slash-separated strings without a leading slash. List returns the
// immediate children of a prefix: plain keys as their last segment, and
// "folders" as their next segment with a trailing slash, sorted, deduplicated.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Storage is a key/value store. Implementations are safe for concurrent use.
// Get returns (nil, nil) for a missing key. Delete of a missing key is not an
// error.
type Storage interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// OpKind is the kind of a transaction operation.
type OpKind uint8

const (
	OpPut OpKind = iota + 1
	OpDelete
)

// TxnOp is one write in a transaction.
type TxnOp struct {
	Kind  OpKind
	Key   string
	Value []byte
}

// Transactional is implemented by storages that can apply several writes
// atomically: either all are applied or none.
type Transactional interface {
	Txn(ctx context.Context, ops []TxnOp) error
}

// Txn applies ops atomically when s supports it, and one by one otherwise.
func Txn(ctx context.Context, s Storage, ops []TxnOp) error {
	if t, ok := s.(Transactional); ok {
		return t.Txn(ctx, ops)
	}
	for _, op := range ops {
		var err error
		switch op.Kind {
		case OpPut:
			err = s.Put(ctx, op.Key, op.Value)
		case OpDelete:
			err = s.Delete(ctx, op.Key)
		default:
			err = fmt.Errorf("storage: unknown op kind %d", op.Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ErrReadOnly is returned by writes to a read-only storage.
var ErrReadOnly = errors.New("storage: read-only")

// GetJSON reads key and decodes it into v. It reports false when the key is missing.
func GetJSON(ctx context.Context, s Storage, key string, v any) (bool, error) {
	b, err := s.Get(ctx, key)
	if err != nil {
		return false, err
	}
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("storage: decode %q: %w", key, err)
	}
	return true, nil
}

// PutJSON encodes v as JSON and stores it at key.
func PutJSON(ctx context.Context, s Storage, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("storage: encode %q: %w", key, err)
	}
	return s.Put(ctx, key, b)
}

// ListAll returns every key under prefix, recursively, relative to prefix.
func ListAll(ctx context.Context, s Storage, prefix string) ([]string, error) {
	var out []string
	var walk func(p string) error
	walk = func(p string) error {
		keys, err := s.List(ctx, prefix+p)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				if err := walk(p + k); err != nil {
					return err
				}
				continue
			}
			out = append(out, p+k)
		}
		return nil
	}
	return out, walk("")
}

// DeletePrefix deletes every key under prefix.
func DeletePrefix(ctx context.Context, s Storage, prefix string) error {
	keys, err := ListAll(ctx, s, prefix)
	if err != nil {
		return err
	}
	ops := make([]TxnOp, 0, len(keys))
	for _, k := range keys {
		ops = append(ops, TxnOp{Kind: OpDelete, Key: prefix + k})
	}
	const chunk = 512
	for len(ops) > 0 {
		n := min(chunk, len(ops))
		if err := Txn(ctx, s, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// ChildrenOf turns a sorted list of full keys under prefix into List's shape.
// Storage implementations use it.
func ChildrenOf(prefix string, keys []string) []string {
	out := make([]string, 0, len(keys))
	seen := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		rest := k[len(prefix):]
		if rest == "" {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		if !seen[rest] {
			seen[rest] = true
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}

// View is a Storage scoped to a key prefix of another Storage.
type View struct {
	parent Storage
	prefix string
}

// NewView returns a view of s under prefix (which should end in "/").
func NewView(s Storage, prefix string) *View { return &View{parent: s, prefix: prefix} }

// Prefix returns the view's prefix within its parent.
func (v *View) Prefix() string { return v.prefix }

func (v *View) Get(ctx context.Context, key string) ([]byte, error) {
	return v.parent.Get(ctx, v.prefix+key)
}
func (v *View) Put(ctx context.Context, key string, value []byte) error {
	return v.parent.Put(ctx, v.prefix+key, value)
}
func (v *View) Delete(ctx context.Context, key string) error {
	return v.parent.Delete(ctx, v.prefix+key)
}
func (v *View) List(ctx context.Context, prefix string) ([]string, error) {
	return v.parent.List(ctx, v.prefix+prefix)
}
func (v *View) Txn(ctx context.Context, ops []TxnOp) error {
	scoped := make([]TxnOp, len(ops))
	for i, op := range ops {
		scoped[i] = TxnOp{Kind: op.Kind, Key: v.prefix + op.Key, Value: op.Value}
	}
	return Txn(ctx, v.parent, scoped)
}

// Memory is an in-memory Storage for tests and scratch use.
type Memory struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemory returns an empty in-memory storage.
func NewMemory() *Memory { return &Memory{m: map[string][]byte{}} }

func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.m[key]
	if !ok {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

func (m *Memory) Put(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = append([]byte(nil), value...)
	return nil
}

func (m *Memory) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
	return nil
}

func (m *Memory) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	keys := make([]string, 0)
	for k := range m.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return ChildrenOf(prefix, keys), nil
}

func (m *Memory) Txn(_ context.Context, ops []TxnOp) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		switch op.Kind {
		case OpPut:
			m.m[op.Key] = append([]byte(nil), op.Value...)
		case OpDelete:
			delete(m.m, op.Key)
		default:
			return fmt.Errorf("storage: unknown op kind %d", op.Kind)
		}
	}
	return nil
}

// Keys returns all keys, sorted (for tests).
func (m *Memory) Keys() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.m))
	for k := range m.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var (
	_ Storage       = (*Memory)(nil)
	_ Transactional = (*Memory)(nil)
	_ Storage       = (*View)(nil)
	_ Transactional = (*View)(nil)
)

// Frozen is a read-only view of the whole state at one raft index (a
// snapshot being taken, or a restored copy). Writes fail with ErrReadOnly.
// It is valid only during the call that hands it out.
type Frozen interface {
	Storage
	// Index is the raft index the view is consistent with.
	Index() uint64
	// Count returns the number of keys starting with prefix (every
	// descendant), reading keys only.
	Count(prefix string) int
	// Walk calls fn with every key starting with prefix, in order, until
	// fn returns an error, which Walk returns.
	Walk(prefix string, fn func(key string) error) error
}
