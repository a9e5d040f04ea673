//go:build !cgo

package pkcs11

import (
	"context"

	"github.com/vigilsec/vigil/core/seal"
)

// Available reports whether this binary can load PKCS#11 modules.
const Available = false

// Factory parses the block and refuses: loading a PKCS#11 module needs cgo.
func Factory(_ context.Context, o seal.Options) (seal.Seal, error) {
	if _, err := ParseConfig(o); err != nil {
		return nil, err
	}
	return nil, o.Errorf("this vigil binary was built without cgo (CGO_ENABLED=0 or no C compiler), so it cannot load a PKCS#11 module; rebuild it with a C toolchain installed")
}
