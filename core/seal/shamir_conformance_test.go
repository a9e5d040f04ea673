package seal_test

import (
	"crypto/rand"
	"testing"

	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/sealtest"
)

func TestShamirConformance(t *testing.T) {
	k := make([]byte, seal.KeySize)
	rand.Read(k)
	mk := func(key []byte) func(t *testing.T) seal.Seal {
		return func(t *testing.T) seal.Seal {
			s, err := seal.NewShamir(key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	other := make([]byte, seal.KeySize)
	rand.Read(other)
	sealtest.Run(t, sealtest.Harness{New: mk(k), OtherKey: mk(other)})
}
