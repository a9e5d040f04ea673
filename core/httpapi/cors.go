package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// CORS is the cross-origin configuration (sys/config/cors) the handler
// applies, as Vault does: without an Origin header nothing changes; an origin
// not allowed gets a 403 (recorded by the Dispatcher as a rejected
// request); a preflight (OPTIONS) is answered here, with the
// allowed methods and headers; other requests from an allowed origin carry
// Access-Control-Allow-Origin.
type CORS struct {
	Enabled        bool
	AllowedOrigins []string // "*" allows every origin
	AllowedHeaders []string
}

// corsMethods are the methods a browser may use, Vault's list.
var corsMethods = []string{http.MethodDelete, http.MethodGet, http.MethodOptions, http.MethodPost, http.MethodPut, "LIST", http.MethodPatch}

func (c CORS) originAllowed(origin string) bool {
	return slices.Contains(c.AllowedOrigins, "*") || slices.Contains(c.AllowedOrigins, origin)
}

// applyCORS handles the cross-origin part of r. It reports whether r was a
// preflight, answered here, and the error refusing r when its origin is not
// allowed (the caller has the Dispatcher record and answer the refusal).
func (s *server) applyCORS(w http.ResponseWriter, r *http.Request) (preflight bool, refused error) {
	if s.o.CORS == nil {
		return false, nil
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false, nil
	}
	c := s.o.CORS(r.Context())
	if !c.Enabled {
		return false, nil
	}
	if !c.originAllowed(origin) {
		return false, core.Errorf(core.CodePermissionDenied, "origin not allowed")
	}
	if r.Method == http.MethodOptions && !slices.Contains(corsMethods, r.Header.Get("Access-Control-Request-Method")) {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return true, nil
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", strings.Join(corsMethods, ","))
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(c.AllowedHeaders, ","))
		w.Header().Set("Access-Control-Max-Age", "300")
		w.WriteHeader(http.StatusOK)
		return true, nil
	}
	return false, nil
}
