package kv

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestMergePatchRFC7396 runs the examples of RFC 7396, appendix A (those
// whose target and patch are objects, as KV data always is).
func TestMergePatchRFC7396(t *testing.T) {
	for _, tc := range []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		{`{"a":"x"}`, `{"a":{"b":null,"c":1}}`, `{"a":{"c":1}}`},
	} {
		target, patch, want := decode(t, tc.target), decode(t, tc.patch), decode(t, tc.want)
		targetCopy, patchCopy := decode(t, tc.target), decode(t, tc.patch)
		if got := mergePatch(target, patch); !reflect.DeepEqual(got, want) {
			t.Errorf("mergePatch(%s, %s) = %v, want %s", tc.target, tc.patch, got, tc.want)
		}
		if !reflect.DeepEqual(target, targetCopy) || !reflect.DeepEqual(patch, patchCopy) {
			t.Errorf("mergePatch(%s, %s) modified its arguments", tc.target, tc.patch)
		}
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
