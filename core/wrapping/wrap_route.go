package wrapping

import (
	"context"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// wrapRoute answers sys/wrapping/wrap: the request data, which the
// Dispatcher then wraps. A request without a wrap TTL is refused (Vault:
// the endpoint requires response wrapping), so its data never comes back
// in clear.
func (s *Service) wrapRoute(_ context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	if req.WrapTTL <= 0 {
		return nil, core.Invalid("endpoint requires response wrapping to be used")
	}
	data := req.Data
	if data == nil {
		data = map[string]any{}
	}
	return &core.Response{Data: data}, nil
}
