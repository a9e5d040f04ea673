package storage

import (
	"context"
	"reflect"
	"testing"
)

func TestMemoryListChildrenAndView(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	for _, k := range []string{"a/x", "a/y/z", "a/y/w", "b", "a/"} {
		if err := m.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := m.List(ctx, "a/")
	if want := []string{"x", "y/"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List(a/) = %v, want %v", got, want)
	}
	got, _ = m.List(ctx, "")
	if want := []string{"a/", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List('') = %v, want %v", got, want)
	}
	v := NewView(m, "a/")
	all, _ := ListAll(ctx, v, "")
	if want := []string{"x", "y/w", "y/z"}; !reflect.DeepEqual(all, want) {
		t.Fatalf("ListAll(view) = %v, want %v", all, want)
	}
	if err := v.Txn(ctx, []TxnOp{{Kind: OpPut, Key: "n", Value: []byte("1")}, {Kind: OpDelete, Key: "x"}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := m.Get(ctx, "a/n"); string(b) != "1" {
		t.Fatalf("view txn put: %q", b)
	}
	if b, _ := m.Get(ctx, "a/x"); b != nil {
		t.Fatal("view txn delete")
	}
	if err := DeletePrefix(ctx, m, "a/y/"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.List(ctx, "a/"); !reflect.DeepEqual(got, []string{"n"}) {
		t.Fatalf("after DeletePrefix: %v", got)
	}
	// Values are copied: mutating a returned slice does not change storage.
	b, _ := m.Get(ctx, "b")
	b[0] = 'Z'
	if b2, _ := m.Get(ctx, "b"); string(b2) != "b" {
		t.Fatal("Get returned shared memory")
	}
	if err := m.Txn(ctx, []TxnOp{{Kind: 99, Key: "q"}}); err == nil {
		t.Fatal("unknown op kind accepted")
	}
}

func TestJSONHelpers(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	type rec struct{ N int }
	if ok, err := GetJSON(ctx, m, "missing", &rec{}); ok || err != nil {
		t.Fatalf("missing: %v %v", ok, err)
	}
	if err := PutJSON(ctx, m, "r", rec{N: 3}); err != nil {
		t.Fatal(err)
	}
	var r rec
	if ok, err := GetJSON(ctx, m, "r", &r); !ok || err != nil || r.N != 3 {
		t.Fatalf("round trip: %v %v %+v", ok, err, r)
	}
	_ = m.Put(ctx, "bad", []byte("{"))
	if _, err := GetJSON(ctx, m, "bad", &r); err == nil {
		t.Fatal("corrupt JSON accepted")
	}
}
