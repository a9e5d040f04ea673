package reports

import (
	"encoding/json"
	"reflect"

	"github.com/vigilsec/vigil/core/safetext"
)

// forDisplay returns a copy of r whose every string is escaped for people
// to read (safetext.Escape): the HTML, CSV and PDF renderings show paths
// and names from the audit log, and a right-to-left override or another
// invisible character in one must not make it look like another. r is
// left untouched (the JSON rendering keeps the values as they are).
func forDisplay(r *Report) *Report {
	b, err := json.Marshal(r)
	if err != nil {
		return r
	}
	var c Report
	if err := json.Unmarshal(b, &c); err != nil {
		return r
	}
	escapeStrings(reflect.ValueOf(&c).Elem())
	return &c
}

// escapeStrings escapes every settable string reachable from v.
func escapeStrings(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() && safetext.Needs(v.String()) {
			v.SetString(safetext.Escape(v.String()))
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			escapeStrings(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				escapeStrings(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			escapeStrings(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			escapeStrings(e)
			nk := k
			if k.Kind() == reflect.String && safetext.Needs(k.String()) {
				v.SetMapIndex(k, reflect.Value{})
				nk = reflect.ValueOf(safetext.Escape(k.String())).Convert(k.Type())
			}
			v.SetMapIndex(nk, e)
		}
	}
}
