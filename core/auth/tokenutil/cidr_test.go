package tokenutil

import (
	"reflect"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs("token_bound_cidrs", []string{" 10.1.2.3/8", "127.0.0.1", "", "::1", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "127.0.0.1/32", "::1/128", "2001:db8::/32"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseCIDRs = %v, want %v", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "host.example", "10.0.0.0/x"} {
		if _, err := ParseCIDRs("token_bound_cidrs", []string{bad}); core.CodeOf(err) != core.CodeInvalid {
			t.Errorf("ParseCIDRs(%q) = %v, want a 400", bad, err)
		}
	}
}

func TestAddrAllowed(t *testing.T) {
	cidrs := []string{"10.0.0.0/8", "127.0.0.1/32", "::1/128"}
	for addr, want := range map[string]bool{
		"10.9.8.7": true, "127.0.0.1": true, "127.0.0.2": false, "::1": true,
		"::ffff:127.0.0.1": true, "192.168.1.1": false, "": false, "garbage": false,
	} {
		if got := AddrAllowed(addr, cidrs); got != want {
			t.Errorf("AddrAllowed(%q) = %v, want %v", addr, got, want)
		}
	}
	if !AddrAllowed("garbage", nil) {
		t.Error("an empty list must allow every address")
	}
}

func TestSubsetCIDRs(t *testing.T) {
	of := []string{"10.0.0.0/8", "127.0.0.0/8"}
	for _, c := range []struct {
		sub  []string
		want bool
	}{
		{[]string{"10.1.0.0/16", "127.0.0.1/32"}, true},
		{[]string{"10.0.0.0/8"}, true},
		{[]string{"0.0.0.0/0"}, false},
		{[]string{"192.168.0.0/16"}, false},
		{nil, true},
	} {
		if got := SubsetCIDRs(c.sub, of); got != c.want {
			t.Errorf("SubsetCIDRs(%v) = %v, want %v", c.sub, got, c.want)
		}
	}
	if !SubsetCIDRs([]string{"0.0.0.0/0"}, nil) {
		t.Error("anything is within an unbounded role")
	}
}
