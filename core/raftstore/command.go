package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
	"go.etcd.io/bbolt"
)

// Command encoding. Every write (Put, Delete, Txn) becomes one raft log entry
// holding a batch of operations:
//
//	byte     version (commandV1)
//	uvarint  number of operations (>= 1)
//	per operation:
//	  byte     kind (storage.OpPut or storage.OpDelete)
//	  uvarint  key length, key bytes
//	  (OpPut only) uvarint value length, value bytes
//
// The leading version byte lets the format evolve: a node that reads a
// version it does not know rejects the entry deterministically (the same
// error on every node) instead of guessing.
const commandV1 byte = 1

// op is one decoded write. key and value alias the log entry's data.
type op struct {
	kind  storage.OpKind
	key   []byte
	value []byte
}

// errEmptyCommand is returned when a command has no operations.
var errEmptyCommand = errors.New("raft: command has no operations")

// validateOp checks the limits bbolt enforces, so that a decoded command can
// never fail half-way through a batch transaction for input reasons.
func validateOp(kind storage.OpKind, key string, valueLen int) *core.Error {
	switch {
	case kind != storage.OpPut && kind != storage.OpDelete:
		return core.Invalid("raft: unknown operation kind %d", kind)
	case key == "":
		return core.Invalid("raft: empty key")
	case len(key) > bbolt.MaxKeySize:
		return core.Errorf(core.CodeTooLarge, "raft: key is %d bytes, the limit is %d", len(key), bbolt.MaxKeySize)
	case int64(valueLen) > bbolt.MaxValueSize:
		return core.Errorf(core.CodeTooLarge, "raft: value for %q is %d bytes, the limit is %d", key, valueLen, int64(bbolt.MaxValueSize))
	}
	return nil
}

// encodeCommand validates ops and encodes them as one command. It returns a
// CodeInvalid or CodeTooLarge *core.Error for an unusable operation.
func encodeCommand(ops []storage.TxnOp) ([]byte, error) {
	if len(ops) == 0 {
		return nil, errEmptyCommand
	}
	size := 1 + binary.MaxVarintLen64
	for _, o := range ops {
		if err := validateOp(o.Kind, o.Key, len(o.Value)); err != nil {
			return nil, err
		}
		size += 1 + 2*binary.MaxVarintLen64 + len(o.Key) + len(o.Value)
	}
	buf := make([]byte, 0, size)
	buf = append(buf, commandV1)
	buf = binary.AppendUvarint(buf, uint64(len(ops)))
	for _, o := range ops {
		buf = append(buf, byte(o.Kind))
		buf = binary.AppendUvarint(buf, uint64(len(o.Key)))
		buf = append(buf, o.Key...)
		if o.Kind == storage.OpPut {
			buf = binary.AppendUvarint(buf, uint64(len(o.Value)))
			buf = append(buf, o.Value...)
		}
	}
	return buf, nil
}

// decodeCommand parses a command produced by encodeCommand. The returned ops
// alias data. It is strict: unknown versions or kinds, out-of-range lengths
// and trailing bytes are errors. It never panics on arbitrary input.
func decodeCommand(data []byte) ([]op, error) {
	if len(data) == 0 {
		return nil, errors.New("raft: empty command")
	}
	if data[0] != commandV1 {
		return nil, fmt.Errorf("raft: unsupported command version %d", data[0])
	}
	rest := data[1:]
	n, rest, err := readUvarint(rest)
	if err != nil {
		return nil, err
	}
	// Each operation takes at least 3 bytes (kind, key length, one key byte),
	// which bounds the allocation for hostile counts.
	if n == 0 {
		return nil, errEmptyCommand
	}
	if n > uint64(len(rest))/3 {
		return nil, fmt.Errorf("raft: command claims %d operations in %d bytes", n, len(rest))
	}
	ops := make([]op, 0, n)
	for i := uint64(0); i < n; i++ {
		if len(rest) == 0 {
			return nil, errors.New("raft: truncated command")
		}
		o := op{kind: storage.OpKind(rest[0])}
		rest = rest[1:]
		if o.key, rest, err = readBytes(rest); err != nil {
			return nil, err
		}
		if o.kind == storage.OpPut {
			if o.value, rest, err = readBytes(rest); err != nil {
				return nil, err
			}
		}
		if err := validateOp(o.kind, string(o.key), len(o.value)); err != nil {
			return nil, err
		}
		ops = append(ops, o)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("raft: %d trailing bytes after command", len(rest))
	}
	return ops, nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	var canon [binary.MaxVarintLen64]byte
	if n <= 0 || n != binary.PutUvarint(canon[:], v) {
		// Overlong encodings are rejected too: one command, one encoding.
		return 0, nil, errors.New("raft: malformed length in command")
	}
	return v, b[n:], nil
}

func readBytes(b []byte) ([]byte, []byte, error) {
	n, rest, err := readUvarint(b)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(len(rest)) {
		return nil, nil, errors.New("raft: truncated command")
	}
	return rest[:n:n], rest[n:], nil
}
