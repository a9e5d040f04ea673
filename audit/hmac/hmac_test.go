package hmac

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func testSalt(t *testing.T) *Salt {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Known answer computed independently (Python's hmac module).
func TestHashKnownAnswer(t *testing.T) {
	got := testSalt(t).Hash("foo")
	want := "hmac-sha256:5bf6643402d479ff01d3f0152a338ee42ca69db453208383c56c46549ef63d79"
	if got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}

func TestDataHashesStringsOnly(t *testing.T) {
	s := testSalt(t)
	in := map[string]any{
		"s": "foo", "n": json.Number("12"), "i": 3, "f": 1.5, "b": true, "nil": nil,
		"nested": map[string]any{"l": []any{"foo", 2, map[string]any{"x": "foo"}}},
		"strs":   []string{"foo"}, "kv": map[string]string{"k": "foo"}, "keep": "foo",
		"t":      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"struct": struct{ A string }{"foo"},
	}
	out := s.Data(in, []string{"keep"})
	h := s.Hash("foo")
	b, _ := json.Marshal(out)
	want := `{"b":true,"f":1.5,"i":3,"keep":"foo","kv":{"k":"` + h + `"},"n":12,"nested":{"l":["` + h + `",2,{"x":"` + h + `"}]},"nil":null,"s":"` + h +
		`","strs":["` + h + `"],"struct":{"A":"` + h + `"},"t":"` + s.Hash("2026-01-02T03:04:05Z") + `"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if in["s"] != "foo" || in["nested"].(map[string]any)["l"].([]any)[0] != "foo" {
		t.Fatal("input modified")
	}
}

func TestGenerateAndKey(t *testing.T) {
	a, err := Generate(bytes.NewReader(bytes.Repeat([]byte{7}, SaltSize)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(a.Key())
	if a.Hash("x") != b.Hash("x") {
		t.Fatal("salt does not round-trip through Key")
	}
	c, _ := Generate(nil)
	if c.Hash("x") == a.Hash("x") {
		t.Fatal("random salts collide")
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("short salt accepted")
	}
}
