package transit

import (
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/tools"
)

// randomRoute is transit's random(/:source)(/:bytes), shared with sys/tools.
func (b *Backend) randomRoute() framework.Route { return tools.RandomRoute("random", b.randReader) }

// hashRoute is transit's hash(/:algorithm), shared with sys/tools.
func (b *Backend) hashRoute() framework.Route { return tools.HashRoute("hash") }
