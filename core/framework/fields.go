package framework

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
)

// FieldType is the type of a request field. Conversion follows Vault's weak
// decoding: numbers given as strings are accepted, a single string is a
// one-element slice, and so on.
type FieldType int

const (
	TypeString FieldType = iota + 1
	TypeInt
	TypeInt64
	TypeBool
	TypeMap
	TypeDurationSecond
	TypeSignedDurationSecond
	TypeSlice
	TypeStringSlice
	TypeCommaStringSlice
	TypeLowerCaseString
	TypeNameString
	TypeKVPairs
	TypeCommaIntSlice
	TypeFloat
	TypeTime
)

func (t FieldType) String() string {
	switch t {
	case TypeString, TypeLowerCaseString, TypeNameString:
		return "string"
	case TypeInt, TypeInt64:
		return "int"
	case TypeBool:
		return "bool"
	case TypeMap:
		return "map"
	case TypeDurationSecond, TypeSignedDurationSecond:
		return "duration"
	case TypeSlice:
		return "slice"
	case TypeStringSlice, TypeCommaStringSlice:
		return "string slice"
	case TypeKVPairs:
		return "keypair"
	case TypeCommaIntSlice:
		return "int slice"
	case TypeFloat:
		return "float"
	case TypeTime:
		return "time"
	}
	return "unknown"
}

// FieldSchema describes one field.
type FieldSchema struct {
	Type          FieldType
	Default       any
	Description   string
	Required      bool
	AllowedValues []any
	// Withheld values (key shares) are moved out of Request.Data before the
	// request is audited or logged; only the handler sees them.
	Withheld bool
}

// FieldData is a request's raw data interpreted through a schema.
// It is not safe for concurrent mutation.
type FieldData struct {
	Raw    map[string]any
	Schema map[string]*FieldSchema
}

// NewFieldData returns field data for raw under schema.
func NewFieldData(raw map[string]any, schema map[string]*FieldSchema) *FieldData {
	if raw == nil {
		raw = map[string]any{}
	}
	return &FieldData{Raw: raw, Schema: schema}
}

// Validate converts every present field and checks required ones, returning a
// CodeInvalid *core.Error naming the first bad field.
func (d *FieldData) Validate() error {
	names := make([]string, 0, len(d.Schema))
	for k := range d.Schema {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s := d.Schema[k]
		v, ok := d.Raw[k]
		if !ok || v == nil {
			if s.Required {
				return core.Invalid("missing required field %q", k)
			}
			continue
		}
		cv, err := convert(v, s.Type)
		if err != nil {
			return core.Invalid("error converting input %v for field %q: %s", short(v), k, err)
		}
		if len(s.AllowedValues) > 0 && !allowed(cv, s.AllowedValues) {
			return core.Invalid("field %q: %v is not one of %v", k, short(v), s.AllowedValues)
		}
	}
	return nil
}

// Unknown returns the sorted names of raw keys not in the schema.
func (d *FieldData) Unknown() []string {
	var out []string
	for k := range d.Raw {
		if _, ok := d.Schema[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// GetOk returns the converted value of k and whether it was present in the
// request (defaults do not count as present). It panics if k is not in the
// schema: that is a programming error in the engine.
func (d *FieldData) GetOk(k string) (any, bool) {
	s, ok := d.Schema[k]
	if !ok {
		panic(fmt.Sprintf("framework: field %q not in schema", k))
	}
	v, ok := d.Raw[k]
	if !ok || v == nil {
		return zeroOrDefault(s), false
	}
	cv, err := convert(v, s.Type)
	if err != nil {
		return zeroOrDefault(s), false
	}
	return cv, true
}

// Get returns the converted value of k, its default, or its type's zero value.
func (d *FieldData) Get(k string) any {
	v, _ := d.GetOk(k)
	return v
}

// String, Int, Bool, Duration, Strings and Map are typed accessors.
func (d *FieldData) String(k string) string { v, _ := d.Get(k).(string); return v }
func (d *FieldData) Int(k string) int       { v, _ := d.Get(k).(int); return v }
func (d *FieldData) Int64(k string) int64   { v, _ := d.Get(k).(int64); return v }
func (d *FieldData) Bool(k string) bool     { v, _ := d.Get(k).(bool); return v }
func (d *FieldData) Float(k string) float64 { v, _ := d.Get(k).(float64); return v }
func (d *FieldData) Duration(k string) time.Duration {
	v, _ := d.Get(k).(time.Duration)
	return v
}
func (d *FieldData) Strings(k string) []string {
	v, _ := d.Get(k).([]string)
	return v
}
func (d *FieldData) Map(k string) map[string]any {
	v, _ := d.Get(k).(map[string]any)
	return v
}
func (d *FieldData) KV(k string) map[string]string {
	v, _ := d.Get(k).(map[string]string)
	return v
}
func (d *FieldData) Ints(k string) []int { v, _ := d.Get(k).([]int); return v }
func (d *FieldData) Time(k string) time.Time {
	v, _ := d.Get(k).(time.Time)
	return v
}

// Has reports whether k was present in the request.
func (d *FieldData) Has(k string) bool {
	v, ok := d.Raw[k]
	return ok && v != nil
}

func zeroOrDefault(s *FieldSchema) any {
	if s.Default != nil {
		if v, err := convert(s.Default, s.Type); err == nil {
			return v
		}
	}
	switch s.Type {
	case TypeString, TypeLowerCaseString, TypeNameString:
		return ""
	case TypeInt:
		return 0
	case TypeInt64:
		return int64(0)
	case TypeBool:
		return false
	case TypeMap:
		return map[string]any(nil)
	case TypeDurationSecond, TypeSignedDurationSecond:
		return time.Duration(0)
	case TypeSlice:
		return []any(nil)
	case TypeStringSlice, TypeCommaStringSlice:
		return []string(nil)
	case TypeKVPairs:
		return map[string]string(nil)
	case TypeCommaIntSlice:
		return []int(nil)
	case TypeFloat:
		return float64(0)
	case TypeTime:
		return time.Time{}
	}
	return nil
}

func convert(v any, t FieldType) (any, error) {
	switch t {
	case TypeString:
		return toString(v)
	case TypeLowerCaseString:
		s, err := toString(v)
		return strings.ToLower(s), err
	case TypeNameString:
		s, err := toString(v)
		if err != nil {
			return nil, err
		}
		if s != "" && !nameRe.MatchString(s) {
			return nil, fmt.Errorf("%q is not a valid name", s)
		}
		return s, nil
	case TypeInt:
		n, err := toInt64(v)
		return int(n), err
	case TypeInt64:
		return toInt64(v)
	case TypeFloat:
		return toFloat(v)
	case TypeBool:
		return toBool(v)
	case TypeDurationSecond:
		d, err := ParseDuration(v)
		if err == nil && d < 0 {
			return nil, fmt.Errorf("duration must not be negative")
		}
		return d, err
	case TypeSignedDurationSecond:
		return ParseDuration(v)
	case TypeMap:
		m, ok := v.(map[string]any)
		if !ok {
			if s, isStr := v.(string); isStr && s != "" {
				var mm map[string]any
				if err := json.Unmarshal([]byte(s), &mm); err == nil {
					return mm, nil
				}
			}
			return nil, fmt.Errorf("expected a map, got %T", v)
		}
		return m, nil
	case TypeSlice:
		switch x := v.(type) {
		case []any:
			return x, nil
		default:
			return []any{x}, nil
		}
	case TypeStringSlice:
		return toStringSlice(v, false)
	case TypeCommaStringSlice:
		return toStringSlice(v, true)
	case TypeKVPairs:
		return toKV(v)
	case TypeCommaIntSlice:
		ss, err := toStringSlice(v, true)
		if err != nil {
			return nil, err
		}
		out := make([]int, 0, len(ss))
		for _, s := range ss {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	case TypeTime:
		switch x := v.(type) {
		case string:
			return time.Parse(time.RFC3339Nano, x)
		case time.Time:
			return x, nil
		}
		n, err := toInt64(v)
		if err != nil {
			return nil, err
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return nil, fmt.Errorf("unknown field type %d", t)
}

func toString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("expected a string, got %T", v)
}

func toInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > 1<<53 {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int64(x), nil
	case json.Number:
		return x.Int64()
	case string:
		if x == "" {
			return 0, nil
		}
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("expected an integer, got %T", v)
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case json.Number:
		return x.Float64()
	case string:
		return strconv.ParseFloat(strings.TrimSpace(x), 64)
	}
	return 0, fmt.Errorf("expected a number, got %T", v)
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if x == "" {
			return false, nil
		}
		return strconv.ParseBool(x)
	case float64:
		return x != 0, nil
	case int:
		return x != 0, nil
	case json.Number:
		f, err := x.Float64()
		return f != 0, err
	}
	return false, fmt.Errorf("expected a bool, got %T", v)
}

func toStringSlice(v any, comma bool) ([]string, error) {
	switch x := v.(type) {
	case []string:
		return x, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, err := toString(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	case string:
		if x == "" {
			return []string{}, nil
		}
		if comma {
			parts := strings.Split(x, ",")
			out := make([]string, 0, len(parts))
			for _, p := range parts {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
			return out, nil
		}
		return []string{x}, nil
	}
	s, err := toString(v)
	if err != nil {
		return nil, fmt.Errorf("expected a list of strings, got %T", v)
	}
	return []string{s}, nil
}

func toKV(v any) (map[string]string, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]string, len(x))
		for k, e := range x {
			s, err := toString(e)
			if err != nil {
				return nil, err
			}
			out[k] = s
		}
		return out, nil
	case map[string]string:
		return x, nil
	}
	ss, err := toStringSlice(v, true)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ss))
	for _, s := range ss {
		k, val, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not a key=value pair", s)
		}
		out[k] = val
	}
	return out, nil
}

// ParseDuration parses a duration the way Vault's API accepts them: an integer
// number of seconds (number or numeric string), or a Go duration string that
// may also use "d" for days ("7d", "1d12h").
func ParseDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case time.Duration:
		return x, nil
	case string:
		x = strings.TrimSpace(x)
		if x == "" {
			return 0, nil
		}
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return time.Duration(n) * time.Second, nil
		}
		if i := strings.Index(x, "d"); i > 0 {
			days, err := strconv.ParseInt(x[:i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", x)
			}
			rest := time.Duration(0)
			if i+1 < len(x) {
				rest, err = time.ParseDuration(x[i+1:])
				if err != nil {
					return 0, fmt.Errorf("invalid duration %q", x)
				}
			}
			return time.Duration(days)*24*time.Hour + rest, nil
		}
		d, err := time.ParseDuration(x)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", x)
		}
		return d, nil
	}
	n, err := toInt64(v)
	if err != nil {
		return 0, fmt.Errorf("expected a duration, got %T", v)
	}
	return time.Duration(n) * time.Second, nil
}

func allowed(v any, vals []any) bool {
	for _, a := range vals {
		if fmt.Sprint(a) == fmt.Sprint(v) {
			return true
		}
	}
	return false
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return s
}
