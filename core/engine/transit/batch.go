package transit

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// batchField is the schema of batch_input.
func batchField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeSlice, Description: "List of items to process in one request; results come back in batch_results, in order."}
}

// partialFailureField is the schema of partial_failure_response_code.
func partialFailureField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeInt, Description: "HTTP status to answer when some, but not all, batch items fail (default 400)."}
}

// batchInput returns the items of batch_input, and false when the request
// has none. An empty list or an item that is not an object is a CodeInvalid
// error for the whole request.
func batchInput(d *framework.FieldData) ([]map[string]any, bool, error) {
	raw, ok := d.Raw["batch_input"]
	if !ok || raw == nil {
		return nil, false, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, true, core.Invalid("failed to parse batch input: expected a list of objects, got %T", raw)
	}
	if len(list) == 0 {
		return nil, true, core.Invalid("missing batch input to process")
	}
	items := make([]map[string]any, len(list))
	for i, v := range list {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, true, core.Invalid("failed to parse batch input: [%d] expected a map, got '%T'", i, v)
		}
		items[i] = m
	}
	return items, true, nil
}

// itemString returns the string member k of a batch item ("" when absent
// or null). ok reports presence; a non-string value is a CodeInvalid error.
func itemString(it map[string]any, k string) (s string, ok bool, err error) {
	v, present := it[k]
	if !present || v == nil {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", true, core.Invalid("'%s' expected type 'string', got unconvertible type '%T'", k, v)
	}
	return s, true, nil
}

// itemInt returns the integer member k of a batch item (0 when absent).
func itemInt(it map[string]any, k string) (int, error) {
	switch v := it[k].(type) {
	case nil:
		return 0, nil
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return 0, core.Invalid("'%s' expected an integer, got %q", k, v.String())
		}
		return int(n), nil
	case float64:
		if v != float64(int(v)) {
			return 0, core.Invalid("'%s' expected an integer, got %v", k, v)
		}
		return int(v), nil
	case int:
		return v, nil
	case string:
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, core.Invalid("'%s' expected an integer, got %q", k, v)
		}
		return n, nil
	default:
		return 0, core.Invalid("'%s' expected type 'int', got unconvertible type '%T'", k, v)
	}
}

// decode64 decodes standard base64; what names the value in the error.
func decode64(s, what string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, core.Invalid("unable to decode %s as base64: %v", what, err)
	}
	return b, nil
}

// itemResult runs one batch item through f, turning a CodeInvalid error
// into the item's "error" member. Other errors abort the whole request.
func itemResult(f func() (map[string]any, error)) (res map[string]any, ok bool, err error) {
	res, err = f()
	if err != nil {
		if core.CodeOf(err) != core.CodeInvalid {
			return nil, false, err
		}
		return map[string]any{"error": core.ClientMessage(err)}, false, nil
	}
	return res, true, nil
}

// runBatch runs f on every item and returns Vault's batch response: the
// results in order, each carrying the item's "reference", and the HTTP
// status Vault uses: 200 when every item succeeded, else 400 — or
// partial_failure_response_code when some items succeeded and it is set
// to a valid status. A whole-request error is returned as such.
func runBatch(items []map[string]any, d *framework.FieldData, f func(it map[string]any) (map[string]any, error)) (*core.Response, error) {
	results := make([]map[string]any, len(items))
	anyOK, anyFailed := false, false
	for i, it := range items {
		res, ok, err := itemResult(func() (map[string]any, error) { return f(it) })
		if err != nil {
			return nil, fmt.Errorf("batch item %d: %w", i, err)
		}
		ref, _, _ := itemString(it, "reference")
		res["reference"] = ref
		results[i] = res
		anyOK = anyOK || ok
		anyFailed = anyFailed || !ok
	}
	resp := &core.Response{Data: map[string]any{"batch_results": results}}
	if !anyFailed {
		return resp, nil
	}
	resp.StatusCode = http.StatusBadRequest
	if code, set := d.GetOk("partial_failure_response_code"); set && anyOK {
		if c, _ := code.(int); c >= 1 && c <= 599 {
			resp.StatusCode = c
		} else {
			resp.AddWarning(fmt.Sprintf("invalid HTTP response code override from partial_failure_response_code, reverting to %d", http.StatusBadRequest))
		}
	}
	return resp, nil
}

// runBatchOK is runBatch for the operations Vault answers with 200 even
// when items fail (sign, verify, hmac).
func runBatchOK(items []map[string]any, f func(it map[string]any) (map[string]any, error)) (*core.Response, error) {
	results := make([]map[string]any, len(items))
	for i, it := range items {
		res, _, err := itemResult(func() (map[string]any, error) { return f(it) })
		if err != nil {
			return nil, fmt.Errorf("batch item %d: %w", i, err)
		}
		ref, _, _ := itemString(it, "reference")
		res["reference"] = ref
		results[i] = res
	}
	return &core.Response{Data: map[string]any{"batch_results": results}}, nil
}
