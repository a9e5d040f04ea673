// Package cubbyhole implements Vault's cubbyhole/ secrets engine: storage
// private to each token. The server mounts it statically at cubbyhole/
// (type "cubbyhole"); it cannot be disabled or moved.
//
// Every token sees its own cubbyhole and no other, whatever its policies
// allow: the storage key space is derived from the calling token, so no
// path names another token's data. A cubbyhole is destroyed with its token
// (the token store calls Destroy when it revokes a token, expiry and tidy
// included). Batch tokens have no cubbyhole, as in Vault.
//
//	cubbyhole/<path>   GET (read), POST/PUT (write the whole object), DELETE, LIST
//
// Response wrapping keeps the wrapped response in the wrapping token's
// cubbyhole through the Go API (Put, Get, Destroy), keyed by the token's
// storage hash.
//
// Layout in the mount's storage view: "<id>/<path>", where <id> is the
// SHA-256 of "cubbyhole/" and the token's storage hash (token.Hash), so the
// raw token never reaches a key. The key space does not depend on a mount
// path or namespace: a token's cubbyhole stays the same wherever the mount
// serving it is.
package cubbyhole

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
	"github.com/vigilsec/vigil/core/token"
)

// Backend is the cubbyhole engine. It is safe for concurrent use.
type Backend struct {
	st atomic.Pointer[storage.Storage]
}

var _ framework.Engine = (*Backend)(nil)

// New returns an unconfigured backend (Setup gives it its storage).
func New() *Backend { return &Backend{} }

// ErrBatchToken is returned for cubbyhole operations with a batch token.
var ErrBatchToken = core.Invalid("cubbyhole operations are only supported by 'service' type tokens")

// errNotSetUp is returned before Setup.
var errNotSetUp = errors.New("cubbyhole: not set up")

// Setup implements framework.Engine.
func (b *Backend) Setup(_ context.Context, env framework.Env) error {
	if env.Storage == nil {
		return errNotSetUp
	}
	st := env.Storage
	b.st.Store(&st)
	return nil
}

// Close implements framework.Engine.
func (b *Backend) Close(context.Context) error { return nil }

func (b *Backend) storage() (storage.Storage, error) {
	p := b.st.Load()
	if p == nil {
		return nil, errNotSetUp
	}
	return *p, nil
}

// prefix is the storage prefix of the cubbyhole of the token with storage
// hash tokenHash.
func prefix(tokenHash string) string {
	sum := sha256.Sum256([]byte("cubbyhole/" + tokenHash))
	return hex.EncodeToString(sum[:]) + "/"
}

// Routes implements framework.Engine.
func (b *Backend) Routes() []framework.Route {
	return []framework.Route{{
		Pattern: framework.MatchAllRegex("path"),
		Fields:  map[string]*framework.FieldSchema{"path": {Type: framework.TypeString, Description: "Path of the secret in the token's cubbyhole."}},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.read,
			core.OpUpdate: b.write,
			core.OpDelete: b.delete,
			core.OpList:   b.list,
		},
		ExistenceCheck: b.exists,
		Help:           "Per-token private secret storage: read and write arbitrary JSON objects.",
	}}
}

// callerPrefix is the storage prefix of the calling token's cubbyhole.
func callerPrefix(req *core.Request) (string, error) {
	p := req.Principal
	if p == nil || p.ClientToken == "" {
		return "", core.Errorf(core.CodePermissionDenied, "permission denied: a cubbyhole belongs to a token; the request has none")
	}
	if p.TokenType == "batch" {
		return "", ErrBatchToken
	}
	return prefix(token.Hash(p.ClientToken)), nil
}

// checkPath refuses empty segments and relative ones (the HTTP layer
// refuses them too; the Go API is checked here).
func checkPath(path string, list bool) error {
	if path == "" && !list {
		return core.Invalid("missing path")
	}
	p := strings.TrimSuffix(path, "/")
	if p == "" {
		return nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return core.Invalid("invalid path %q: empty or relative path segment", path)
		}
	}
	return nil
}

func (b *Backend) exists(ctx context.Context, req *core.Request, d *framework.FieldData) (bool, error) {
	pre, err := callerPrefix(req)
	if err != nil {
		return false, nil
	}
	path := d.String("path")
	if checkPath(path, false) != nil {
		return false, nil
	}
	st, err := b.storage()
	if err != nil {
		return false, err
	}
	v, err := st.Get(ctx, pre+path)
	return v != nil, err
}

func (b *Backend) read(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	pre, err := callerPrefix(req)
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path, false); err != nil {
		return nil, err
	}
	data, err := b.get(ctx, pre+path)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return nil, core.ErrNotFound
	}
	resp := &core.Response{Data: data}
	if path == ResponseKey {
		resp.AddWarning("Reading from 'cubbyhole/response' is deprecated. Please use sys/wrapping/unwrap to unwrap responses, as it provides additional security checks and other benefits.")
	}
	return resp, nil
}

// write replaces the object at the path with the request body, which must
// not be empty.
func (b *Backend) write(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	pre, err := callerPrefix(req)
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path, false); err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, "/") {
		return nil, core.Invalid("invalid path %q: a secret's path cannot end with \"/\"", path)
	}
	if len(req.Data) == 0 {
		return nil, core.Invalid("missing data fields")
	}
	raw, err := json.Marshal(req.Data)
	if err != nil {
		return nil, core.Invalid("data cannot be encoded as JSON: %v", err)
	}
	st, err := b.storage()
	if err != nil {
		return nil, err
	}
	if err := st.Put(ctx, pre+path, raw); err != nil {
		return nil, fmt.Errorf("cubbyhole: write: %w", err)
	}
	return nil, nil
}

func (b *Backend) delete(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	pre, err := callerPrefix(req)
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path, false); err != nil {
		return nil, err
	}
	st, err := b.storage()
	if err != nil {
		return nil, err
	}
	if err := st.Delete(ctx, pre+path); err != nil {
		return nil, fmt.Errorf("cubbyhole: delete: %w", err)
	}
	return nil, nil
}

// list answers the keys and folders ("dir/") under the path; nothing
// there is a 404, as in Vault.
func (b *Backend) list(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	pre, err := callerPrefix(req)
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path, true); err != nil {
		return nil, err
	}
	switch {
	case path == "/":
		path = ""
	case path != "" && !strings.HasSuffix(path, "/"):
		path += "/"
	}
	st, err := b.storage()
	if err != nil {
		return nil, err
	}
	keys, err := st.List(ctx, pre+path)
	if err != nil {
		return nil, fmt.Errorf("cubbyhole: list: %w", err)
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *Backend) get(ctx context.Context, key string) (map[string]any, error) {
	st, err := b.storage()
	if err != nil {
		return nil, err
	}
	raw, err := st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("cubbyhole: read: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	var data map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return nil, fmt.Errorf("cubbyhole: stored object does not decode: %w", err)
	}
	return data, nil
}

// Well-known keys of a response-wrapping token's cubbyhole.
const (
	// ResponseKey holds the wrapped response.
	ResponseKey = "response"
	// WrapInfoKey holds what sys/wrapping/lookup answers.
	WrapInfoKey = "wrapinfo"
)

// Put stores value at key in the cubbyhole of the token with storage hash
// tokenHash (the Go API response wrapping uses).
func (b *Backend) Put(ctx context.Context, tokenHash, key string, value []byte) error {
	if err := checkPath(key, false); err != nil {
		return err
	}
	st, err := b.storage()
	if err != nil {
		return err
	}
	return st.Put(ctx, prefix(tokenHash)+key, value)
}

// Get returns the value at key in the cubbyhole of the token with storage
// hash tokenHash, nil when there is none.
func (b *Backend) Get(ctx context.Context, tokenHash, key string) ([]byte, error) {
	if err := checkPath(key, false); err != nil {
		return nil, err
	}
	st, err := b.storage()
	if err != nil {
		return nil, err
	}
	return st.Get(ctx, prefix(tokenHash)+key)
}

// Destroy deletes the whole cubbyhole of the token with storage hash
// tokenHash. Destroying an empty cubbyhole is not an error.
func (b *Backend) Destroy(ctx context.Context, tokenHash string) error {
	st, err := b.storage()
	if err != nil {
		return err
	}
	if err := storage.DeletePrefix(ctx, st, prefix(tokenHash)); err != nil {
		return fmt.Errorf("cubbyhole: destroy: %w", err)
	}
	return nil
}
