package system

import (
	"crypto/rand"
	"io"

	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/tools"
)

// toolRoutes are sys/tools/random(/:source)(/:bytes) and
// sys/tools/hash(/:algorithm), Vault's general-purpose tools (the same code
// serves transit's random and hash).
func (b *Backend) toolRoutes() []framework.Route {
	return []framework.Route{
		tools.RandomRoute("tools/random", func() io.Reader { return rand.Reader }),
		tools.HashRoute("tools/hash"),
	}
}
