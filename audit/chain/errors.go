package chain

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors. Match them with errors.Is; never by text.
var (
	// ErrClosed is returned by Append and the control methods after Close.
	ErrClosed = errors.New("audit chain: writer closed")

	// ErrTimeout is returned by Append when the entry was not acknowledged
	// within Config.WriteTimeout. If the writer had already taken the entry
	// into a batch, the entry may still become durable later; otherwise it
	// is guaranteed never to be written.
	ErrTimeout = errors.New("audit chain: write timed out")

	// ErrDiskFull wraps ENOSPC and EDQUOT write/sync failures. Errors that
	// match it also match the underlying syscall.Errno.
	ErrDiskFull = errors.New("audit chain: disk full")

	// ErrInvalidBody is returned by Append for a body that is not a single
	// JSON object on one line, that is larger than Config.MaxEntryBytes, or
	// that carries chain members or a reserved "vigil." type at top level.
	ErrInvalidBody = errors.New("audit chain: invalid entry body")

	// ErrCorrupt is returned by Open when the newest segment is damaged
	// beyond the torn-tail window (see TornTailWindow): that is tampering or
	// media failure, not a crash, and Open refuses to append to it.
	ErrCorrupt = errors.New("audit chain: log corrupt")

	// ErrNodeMismatch is returned by Open when the existing log was written
	// by a different node id.
	ErrNodeMismatch = errors.New("audit chain: log belongs to another node")

	// ErrBehindCheckpoint is returned by Open when Config.LastCheckpoint
	// proves that the local log lost acknowledged entries (its head is older
	// than the trusted checkpoint, or has the same seq with another hash).
	ErrBehindCheckpoint = errors.New("audit chain: log is behind the trusted checkpoint")
)

// classify wraps a write or sync failure so that disk-full conditions match
// ErrDiskFull as well as the original errno.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("audit chain: %s: %w: %w", op, ErrDiskFull, err)
	}
	return fmt.Errorf("audit chain: %s: %w", op, err)
}
