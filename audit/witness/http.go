package witness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

// HTTP is a witness reached over HTTP: Push PUTs a Record as JSON to the
// URL and Latest GETs it back. {node} and {device} in the URL are replaced
// by the node id and device name, so one URL serves many chains; without
// them the witness must keep one record per URL. A Vault-style response
// envelope ({"data": {...}}) is unwrapped, so a second Vigil's
// sys/audit/witness/{node}/{device} is a witness.
type HTTP struct {
	Name   string
	URL    string
	Header http.Header // e.g. X-Vault-Token for a Vigil witness
	Client *http.Client
}

// ErrNoRecord is returned by Latest when the witness holds nothing yet.
var ErrNoRecord = errors.New("witness holds no record")

func (h *HTTP) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// URLFor returns the witness URL for (node, device).
func (h *HTTP) URLFor(node, device string) string {
	r := strings.NewReplacer("{node}", url.PathEscape(node), "{device}", url.PathEscape(device))
	return r.Replace(h.URL)
}

// Push sends the checkpoint of (node's) device, with the public key that
// signed it (standard base64).
func (h *HTTP) Push(ctx context.Context, device string, cp chain.Checkpoint, publicKey string) error {
	body, err := json.Marshal(Record{Device: device, Checkpoint: cp.JSON(), PublicKey: publicKey})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, h.URLFor(cp.NodeID, device), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h.Header {
		req.Header[k] = v
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return fmt.Errorf("witness %s: %w", h.Name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("witness %s: %s: %s", h.Name, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// Latest returns the checkpoint the witness holds for (node, device), with
// Source naming the witness.
func (h *HTTP) Latest(ctx context.Context, node, device string) (chain.Checkpoint, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URLFor(node, device), nil)
	if err != nil {
		return chain.Checkpoint{}, err
	}
	for k, v := range h.Header {
		req.Header[k] = v
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return chain.Checkpoint{}, fmt.Errorf("witness %s: %w", h.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return chain.Checkpoint{}, fmt.Errorf("witness %s: %w", h.Name, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return chain.Checkpoint{}, fmt.Errorf("witness %s: %w", h.Name, ErrNoRecord)
	}
	if resp.StatusCode/100 != 2 {
		return chain.Checkpoint{}, fmt.Errorf("witness %s: %s: %s", h.Name, resp.Status, strings.TrimSpace(string(b)))
	}
	rec, err := ParseRecord(b)
	if err != nil {
		return chain.Checkpoint{}, fmt.Errorf("witness %s: %w", h.Name, err)
	}
	cp, err := rec.Checkpoint.Checkpoint()
	if err != nil {
		return chain.Checkpoint{}, fmt.Errorf("witness %s: %w", h.Name, err)
	}
	cp.Source = "witness " + h.Name
	return cp, nil
}

// ParseRecord decodes a Record, bare or in a {"data": ...} envelope.
func ParseRecord(b []byte) (Record, error) {
	var env struct {
		Data *Record `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err == nil && env.Data != nil && env.Data.Checkpoint.Hash != "" {
		return *env.Data, nil
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("not a witness record: %v", err)
	}
	if r.Checkpoint.Hash == "" || r.Checkpoint.Seq == 0 {
		return r, errors.New("not a witness record: no checkpoint")
	}
	return r, nil
}
