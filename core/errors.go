package core

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an Error. Each code maps to one HTTP status (see HTTPStatus).
type Code string

// Error codes. Match them with CodeOf or errors.Is against the sentinels; never
// match errors by their text.
const (
	CodeInvalid          Code = "invalid"           // 400
	CodePermissionDenied Code = "permission_denied" // 403
	CodeNotFound         Code = "not_found"         // 404
	CodeUnsupported      Code = "unsupported"       // 405
	CodePrecondition     Code = "precondition"      // 412
	CodeTooLarge         Code = "too_large"         // 413
	CodeUnsupportedMedia Code = "unsupported_media" // 415
	CodeRateLimited      Code = "rate_limited"      // 429
	CodeInternal         Code = "internal"          // 500
	CodeAuditFailed      Code = "audit_failed"      // 500: an audit device could not record an entry (the cause)
	// CodeAuditRequest: the request entry could not be recorded. The
	// request was not executed; retrying it is safe.
	CodeAuditRequest Code = "audit_request_failed" // 500
	// CodeAuditResponse: the response entry could not be recorded. The
	// request was executed, but its response is withheld; retry only if
	// the request is idempotent.
	CodeAuditResponse Code = "audit_response_failed" // 500
	CodeSealed        Code = "sealed"                // 503
	CodeUnavailable   Code = "unavailable"           // 503
)

// Error is Vigil's one coded error type. Msg is what the client sees; Err,
// when set, is the wrapped cause (shown only when Msg is empty). Errorf with
// %w sets both: Msg is the full formatted text, Err the wrapped cause.
type Error struct {
	Code Code
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Msg != "":
		return e.Msg
	case e.Err != nil:
		return e.Err.Error()
	}
	return string(e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code and, when the
// target has a message, the same message. It lets errors.Is(err, ErrSealed) work
// on wrapped copies.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.Msg == "" || t.Msg == e.Msg)
}

// Errorf returns an *Error with the given code and formatted message. A %w verb
// in format wraps the argument as Err.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// Sentinels. Compare with errors.Is.
var (
	ErrSealed           = &Error{Code: CodeSealed, Msg: "Vault is sealed"}
	ErrPermissionDenied = &Error{Code: CodePermissionDenied, Msg: "permission denied"}
	ErrNotFound         = &Error{Code: CodeNotFound}
	ErrUnsupportedPath  = &Error{Code: CodeNotFound, Msg: "unsupported path"}
	ErrUnsupportedOp    = &Error{Code: CodeUnsupported, Msg: "unsupported operation"}
	ErrInternal         = &Error{Code: CodeInternal, Msg: "internal error"}
	ErrNotInitialized   = &Error{Code: CodeInvalid, Msg: "Vault is not initialized"}
)

// CodeOf returns the code of the first *Error in err's chain, CodeInternal for
// any other non-nil error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// HTTPStatus maps a code to the HTTP status Vault uses for it.
func HTTPStatus(c Code) int {
	switch c {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodePermissionDenied:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeUnsupported:
		return http.StatusMethodNotAllowed
	case CodePrecondition:
		return http.StatusPreconditionFailed
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeSealed, CodeUnavailable:
		return http.StatusServiceUnavailable
	case "":
		return http.StatusOK
	}
	return http.StatusInternalServerError
}

// ClientMessage is the text a client sees for err: the message of the first
// *Error in the chain (with its cause), or "internal error" for foreign errors,
// whose text may leak internals.
func ClientMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}

// Invalid is shorthand for Errorf(CodeInvalid, ...).
func Invalid(format string, args ...any) *Error { return Errorf(CodeInvalid, format, args...) }
