package framework

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

func TestConvertWeakTypes(t *testing.T) {
	cases := []struct {
		in   any
		typ  FieldType
		want any
	}{
		{"42", TypeInt, 42},
		{json.Number("7"), TypeInt, 7},
		{float64(3), TypeInt64, int64(3)},
		{"true", TypeBool, true},
		{json.Number("0"), TypeBool, false},
		{"1h", TypeDurationSecond, time.Hour},
		{"90", TypeDurationSecond, 90 * time.Second},
		{json.Number("30"), TypeDurationSecond, 30 * time.Second},
		{"2d", TypeDurationSecond, 48 * time.Hour},
		{"1d12h", TypeDurationSecond, 36 * time.Hour},
		{"a, b,,c", TypeCommaStringSlice, []string{"a", "b", "c"}},
		{"solo", TypeStringSlice, []string{"solo"}},
		{[]any{"x", json.Number("1")}, TypeStringSlice, []string{"x", "1"}},
		{[]any{"k=v", "a=b=c"}, TypeKVPairs, map[string]string{"k": "v", "a": "b=c"}},
		{map[string]any{"n": json.Number("1")}, TypeKVPairs, map[string]string{"n": "1"}},
		{"MiXeD", TypeLowerCaseString, "mixed"},
		{json.Number("12"), TypeString, "12"},
		{"1,2", TypeCommaIntSlice, []int{1, 2}},
	}
	for _, c := range cases {
		got, err := convert(c.in, c.typ)
		if err != nil {
			t.Errorf("convert(%#v, %v): %v", c.in, c.typ, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("convert(%#v, %v) = %#v, want %#v", c.in, c.typ, got, c.want)
		}
	}
}

func TestConvertRejects(t *testing.T) {
	bad := []struct {
		in  any
		typ FieldType
	}{
		{"abc", TypeInt},
		{1.5, TypeInt},
		{"maybe", TypeBool},
		{"-5s", TypeDurationSecond},
		{"soon", TypeDurationSecond},
		{map[string]any{}, TypeString},
		{"not json", TypeMap},
		{"novalue", TypeKVPairs},
		{"bad name!", TypeNameString},
	}
	for _, c := range bad {
		if v, err := convert(c.in, c.typ); err == nil {
			t.Errorf("convert(%#v, %v) = %#v, want an error", c.in, c.typ, v)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	d := NewFieldData(map[string]any{"cas": "abc"}, map[string]*FieldSchema{"cas": {Type: TypeInt}, "name": {Type: TypeString, Required: true}})
	err := d.Validate()
	if core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("want CodeInvalid, got %v", err)
	}
	if got := err.Error(); got != `error converting input abc for field "cas": strconv.ParseInt: parsing "abc": invalid syntax` {
		t.Fatalf("message: %q", got)
	}
	d = NewFieldData(map[string]any{}, map[string]*FieldSchema{"name": {Type: TypeString, Required: true}})
	if err := d.Validate(); err == nil || err.Error() != `missing required field "name"` {
		t.Fatalf("required: %v", err)
	}
	d = NewFieldData(map[string]any{"mode": "x"}, map[string]*FieldSchema{"mode": {Type: TypeString, AllowedValues: []any{"a", "b"}}})
	if err := d.Validate(); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("allowed values: %v", err)
	}
}

func TestGetDefaultsAndPresence(t *testing.T) {
	d := NewFieldData(map[string]any{"set": "5"}, map[string]*FieldSchema{
		"set": {Type: TypeInt}, "def": {Type: TypeInt, Default: 9}, "none": {Type: TypeStringSlice},
	})
	if v, ok := d.GetOk("set"); !ok || v != 5 {
		t.Fatalf("set: %v %v", v, ok)
	}
	if v, ok := d.GetOk("def"); ok || v != 9 {
		t.Fatalf("default must be returned but not count as present: %v %v", v, ok)
	}
	if d.Strings("none") != nil || d.Has("none") {
		t.Fatal("absent slice")
	}
	if got := d.Unknown(); len(got) != 0 {
		t.Fatalf("unknown: %v", got)
	}
	d.Raw["extra"] = 1
	if got := d.Unknown(); !reflect.DeepEqual(got, []string{"extra"}) {
		t.Fatalf("unknown: %v", got)
	}
}

func TestRouteMatchCaptures(t *testing.T) {
	r := Route{Pattern: `data/` + MatchAllRegex("path")}
	caps, ok := r.Match("data/a/b/c")
	if !ok || caps["path"] != "a/b/c" {
		t.Fatalf("match: %v %v", caps, ok)
	}
	if _, ok := r.Match("meta/a"); ok {
		t.Fatal("matched the wrong prefix")
	}
	n := Route{Pattern: `keys/` + GenericNameRegex("name")}
	if _, ok := n.Match("keys/my-key.v1"); !ok {
		t.Fatal("generic name rejected a valid name")
	}
	if _, ok := n.Match("keys/a/b"); ok {
		t.Fatal("generic name matched a slash")
	}
}

func TestTTLs(t *testing.T) {
	sys := StaticSystem{Default: time.Hour, Max: 2 * time.Hour}
	if ttl, w := TTLs(0, 0, 0, sys); ttl != time.Hour || w != "" {
		t.Fatalf("default: %v %q", ttl, w)
	}
	if ttl, w := TTLs(5*time.Hour, 0, 0, sys); ttl != 2*time.Hour || w == "" {
		t.Fatalf("mount cap: %v %q", ttl, w)
	}
	if ttl, _ := TTLs(90*time.Minute, 0, 30*time.Minute, sys); ttl != 30*time.Minute {
		t.Fatalf("role cap: %v", ttl)
	}
	if ttl, _ := TTLs(0, 10*time.Minute, 0, sys); ttl != 10*time.Minute {
		t.Fatalf("role default: %v", ttl)
	}
}

func TestMatchSpecific(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          int
		ok            bool
	}{
		{`audit/query/?`, "audit/query", 11, true},
		{`audit/(?P<path>.+?)/?`, "audit/query", 6, true},
		{`audit/(?P<path>.+?)/?`, "audit/query/", 7, true},
		{`data/(?P<path>.*)`, "data/", 5, true},
		{`(?P<a>x(?P<b>y))z`, "xyz", 1, true}, // nested captures count once
		{`metadata/?`, "data", 0, false},
	} {
		r := Route{Pattern: c.pattern}
		_, got, ok := r.MatchSpecific(c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("%s on %q: %d %v, want %d %v", c.pattern, c.path, got, ok, c.want, c.ok)
		}
	}
}
