package transit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
	"github.com/vigilsec/vigil/core/storage"
)

var testMount = core.MountInfo{Path: "transit/", Type: "transit"}

// newEngine mounts a fresh engine on in-memory storage.
func newEngine(t *testing.T) (*Backend, *enginetest.Client) {
	t.Helper()
	e, c := enginetest.MustSetup(t, New, testMount)
	return e.(*Backend), c
}

// seqReader returns a reader of the bytes 0, 1, 2, ... 255, the test
// randomness of the known-answer tests.
func seqReader() io.Reader {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return bytes.NewReader(b)
}

// must returns a function that fails the test when a call fails and
// returns the response data otherwise: must(t)(c.Write(path, data)).
func must(t *testing.T) func(*core.Response, error) map[string]any {
	t.Helper()
	return func(resp *core.Response, err error) map[string]any {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if resp == nil {
			return nil
		}
		if resp.StatusCode >= 400 {
			t.Fatalf("unexpected status %d: %v", resp.StatusCode, resp.Data)
		}
		return resp.Data
	}
}

// wantErr fails unless err has code and contains msg.
func wantErr(t *testing.T, err error, code core.Code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s %q", code, msg)
	}
	if core.CodeOf(err) != code {
		t.Fatalf("error %q has code %s, want %s", err, core.CodeOf(err), code)
	}
	if !strings.Contains(core.ClientMessage(err), msg) {
		t.Fatalf("error %q does not contain %q", core.ClientMessage(err), msg)
	}
}

// invalid returns a checker for calls that must fail with a 400 whose
// message contains msg.
func invalid(t *testing.T, msg string) func(*core.Response, error) {
	t.Helper()
	return func(_ *core.Response, err error) {
		t.Helper()
		wantErr(t, err, core.CodeInvalid, msg)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func unb64(t *testing.T, s any) string {
	t.Helper()
	str, _ := s.(string)
	b, err := base64.StdEncoding.DecodeString(str)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return string(b)
}

// str returns data[k] as a string, failing when it is not one.
func str(t *testing.T, data map[string]any, k string) string {
	t.Helper()
	s, ok := data[k].(string)
	if !ok {
		t.Fatalf("%s is %T (%v), want a string; data %v", k, data[k], data[k], data)
	}
	return s
}

// asJSON normalises v through JSON so that ints and json.Numbers compare.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func equalJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := asJSON(t, got), asJSON(t, want); !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

// batch returns the batch_results of a batch response.
func batch(t *testing.T, resp *core.Response) []map[string]any {
	t.Helper()
	if resp == nil {
		t.Fatal("nil batch response")
	}
	out, ok := resp.Data["batch_results"].([]map[string]any)
	if !ok {
		t.Fatalf("batch_results is %T", resp.Data["batch_results"])
	}
	return out
}

func TestConformance(t *testing.T) {
	// The probes' data maps are filled by the seed: ciphertexts made by the
	// first engine must decrypt, and HMACs and Ed25519 signatures (both
	// deterministic) must come out the same, on a fresh engine.
	decryptAES, decryptRSA := map[string]any{}, map[string]any{}
	enginetest.RunConformance(t, New, testMount, enginetest.WithPersistence(
		func(tb testing.TB, c *enginetest.Client) {
			c.MustCall(tb, core.OpUpdate, "keys/aes", nil)
			c.MustCall(tb, core.OpUpdate, "keys/aes/rotate", nil)
			c.MustCall(tb, core.OpUpdate, "keys/aes/config", map[string]any{"min_decryption_version": 1, "deletion_allowed": true})
			c.MustCall(tb, core.OpUpdate, "keys/ed", map[string]any{"type": "ed25519", "exportable": true})
			c.MustCall(tb, core.OpUpdate, "keys/ec", map[string]any{"type": "ecdsa-p256"})
			c.MustCall(tb, core.OpUpdate, "keys/rsa", map[string]any{"type": "rsa-2048"})
			c.MustCall(tb, core.OpUpdate, "keys/mac", map[string]any{"type": "hmac", "key_size": 64})
			ct := c.MustCall(tb, core.OpUpdate, "encrypt/aes", map[string]any{"plaintext": b64("persist me"), "key_version": 1})
			decryptAES["ciphertext"] = ct.Data["ciphertext"]
			ct = c.MustCall(tb, core.OpUpdate, "encrypt/rsa", map[string]any{"plaintext": b64("persist me too")})
			decryptRSA["ciphertext"] = ct.Data["ciphertext"]
		},
		enginetest.Probe{Op: core.OpList, Path: "keys/"},
		enginetest.Probe{Op: core.OpRead, Path: "keys/aes"},
		enginetest.Probe{Op: core.OpRead, Path: "keys/ed"},
		enginetest.Probe{Op: core.OpRead, Path: "keys/ec"},
		enginetest.Probe{Op: core.OpRead, Path: "keys/rsa"},
		enginetest.Probe{Op: core.OpRead, Path: "keys/mac"},
		enginetest.Probe{Op: core.OpRead, Path: "export/signing-key/ed"},
		enginetest.Probe{Op: core.OpUpdate, Path: "decrypt/aes", Data: decryptAES},
		enginetest.Probe{Op: core.OpUpdate, Path: "decrypt/rsa", Data: decryptRSA},
		enginetest.Probe{Op: core.OpUpdate, Path: "hmac/mac", Data: map[string]any{"input": b64("x")}},
		enginetest.Probe{Op: core.OpUpdate, Path: "hmac/aes/sha2-512", Data: map[string]any{"input": b64("x")}},
		enginetest.Probe{Op: core.OpUpdate, Path: "sign/ed", Data: map[string]any{"input": b64("x")}},
	))
}

func TestSetupWithoutStorage(t *testing.T) {
	_, c := newEngine(t)
	env := c.Env()
	env.Storage = nil
	err := New().Setup(t.Context(), env)
	wantErr(t, err, core.CodeInternal, "setup without storage")
}

func TestNotSetUp(t *testing.T) {
	b := &Backend{}
	_, err := b.listKeys(t.Context(), nil, nil)
	wantErr(t, err, core.CodeUnavailable, "not set up")
	if _, err := b.autoRotateScan(t.Context(), nil, nil); core.CodeOf(err) != core.CodeUnavailable {
		t.Errorf("auto-rotate scan before Setup: %v, want unavailable", err)
	}
}

// failingStorage fails every call, to check that storage errors are
// internal errors that do not leak their text.
type failingStorage struct{}

var errDisk = errors.New("disk on fire at /var/lib/secret")

func (failingStorage) Get(context.Context, string) ([]byte, error)    { return nil, errDisk }
func (failingStorage) Put(context.Context, string, []byte) error      { return errDisk }
func (failingStorage) Delete(context.Context, string) error           { return errDisk }
func (failingStorage) List(context.Context, string) ([]string, error) { return nil, errDisk }

var _ storage.Storage = failingStorage{}

func TestStorageErrorsAreInternal(t *testing.T) {
	_, c := newEngine(t)
	env := c.Env()
	env.Storage = failingStorage{}
	if err := c.Engine.Setup(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	for _, call := range []struct {
		op   core.Operation
		path string
		data map[string]any
	}{
		{core.OpUpdate, "keys/k", nil},
		{core.OpRead, "keys/k", nil},
		{core.OpList, "keys/", nil},
		{core.OpUpdate, "encrypt/k", map[string]any{"plaintext": b64("x")}},
		{core.OpUpdate, "keys/k/rotate", nil},
	} {
		_, err := c.Call(t.Context(), call.op, call.path, call.data)
		if core.CodeOf(err) != core.CodeInternal || !errors.Is(err, errDisk) {
			t.Errorf("%s %s: %v, want an internal error wrapping the storage error", call.op, call.path, err)
		}
		if msg := core.ClientMessage(err); strings.Contains(msg, "fire") {
			t.Errorf("%s %s: client message %q leaks the storage error", call.op, call.path, msg)
		}
	}
	if err := c.RunScheduled(t, t.Context()); !errors.Is(err, errDisk) {
		t.Errorf("scheduled jobs: %v, want the storage error", err)
	}
}
