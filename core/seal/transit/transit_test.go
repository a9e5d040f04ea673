package transit_test

import (
	"context"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/sealtest"
	"github.com/vigilsec/vigil/core/seal/transit"
	"github.com/vigilsec/vigil/core/server/servertest"
)

func factory(t *testing.T, addr, token, key string) seal.Seal {
	t.Helper()
	s, err := transit.Factory(context.Background(), seal.Options{Type: transit.Type, Values: map[string]string{
		"address": addr, "token": token, "key_name": key, "mount_path": "transit/", "disable_renewal": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.(*transit.Seal).Close() })
	return s
}

// TestConformance runs the seal suite against a real Vigil server (in
// process, on a loopback port) serving the transit engine.
func TestConformance(t *testing.T) {
	srv := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
	if err := srv.Client.Sys().Mount("transit", &vaultapi.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"unseal", "other"} {
		if _, err := srv.Client.Logical().Write("transit/keys/"+k, nil); err != nil {
			t.Fatal(err)
		}
	}
	sealtest.Run(t, sealtest.Harness{
		New:         func(t *testing.T) seal.Seal { return factory(t, srv.URL, srv.RootToken, "unseal") },
		OtherKey:    func(t *testing.T) seal.Seal { return factory(t, srv.URL, srv.RootToken, "other") },
		Unreachable: func(t *testing.T) seal.Seal { return factory(t, "http://127.0.0.1:1", srv.RootToken, "unseal") },
		Auto:        true,
	})
}

func TestFactoryOptions(t *testing.T) {
	none := func(string) string { return "" }
	for name, vals := range map[string]map[string]string{
		"no address":  {"token": "t", "key_name": "k", "mount_path": "transit/"},
		"no token":    {"address": "http://x", "key_name": "k", "mount_path": "transit/"},
		"no key":      {"address": "http://x", "token": "t", "mount_path": "transit/"},
		"no mount":    {"address": "http://x", "token": "t", "key_name": "k"},
		"unknown key": {"address": "http://x", "token": "t", "key_name": "k", "mount_path": "transit/", "keyname": "k"},
	} {
		if _, err := transit.Factory(context.Background(), seal.Options{Type: "transit", Values: vals, Getenv: none}); err == nil {
			t.Errorf("%s: accepted %v", name, vals)
		}
	}
}
