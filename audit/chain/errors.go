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

	// ErrFirstNotWritten fails an entry appended with AppendLinked whose
	// first entry was not written: it is not written either, so the log
	// never holds the second entry of a pair without the first.
	ErrFirstNotWritten = errors.New("audit chain: the entry this one follows was not written")

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

	// ErrUntrusted is matched by the *RefusalError Open returns when the
	// log does not match Config.TrustedCheckpoints: lines were lost,
	// edited, re-hashed, padded or stripped of checkpoints since the
	// newest trusted checkpoint. Open then refuses to append; only Relink
	// (an operator's acknowledged decision) starts a new chain.
	ErrUntrusted = errors.New("audit chain: the log does not match its trusted checkpoint")
)

// RefusalError is why Open refused a log: the first failure the
// re-verification from the newest trusted checkpoint found (its Kind names
// the kind of tampering) and that checkpoint.
type RefusalError struct {
	Failure *Failure
	// Trusted is the newest trusted checkpoint the log was held to (nil
	// when none was given and the log failed on its own).
	Trusted *Checkpoint
}

func (e *RefusalError) Error() string {
	what := "its own checkpoints"
	if e.Trusted != nil {
		what = fmt.Sprintf("the trusted checkpoint at seq %d%s", e.Trusted.Seq, sourceOf(e.Trusted))
	}
	return fmt.Sprintf("audit chain: the log does not match %s: %v", what, e.Failure)
}

// Unwrap makes the error match ErrUntrusted.
func (e *RefusalError) Unwrap() error { return ErrUntrusted }

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
