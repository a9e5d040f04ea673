package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// CORS is the cross-origin configuration (sys/config/cors) the handler
// applies, as Vault does: without an Origin header nothing changes; an origin
// not allowed gets a 403; a preflight (OPTIONS) is answered here, with the
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

// applyCORS handles the cross-origin part of r. It reports whether the
// request was answered (a preflight or a refused origin).
func (s *server) applyCORS(w http.ResponseWriter, r *http.Request) bool {
	if s.o.CORS == nil {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	c := s.o.CORS(r.Context())
	if !c.Enabled {
		return false
	}
	if !c.originAllowed(origin) {
		writeError(w, core.Errorf(core.CodePermissionDenied, "origin not allowed"))
		return true
	}
	if r.Method == http.MethodOptions && !slices.Contains(corsMethods, r.Header.Get("Access-Control-Request-Method")) {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return true
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", strings.Join(corsMethods, ","))
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(c.AllowedHeaders, ","))
		w.Header().Set("Access-Control-Max-Age", "300")
		w.WriteHeader(http.StatusOK)
		return true
	}
	return false
}
