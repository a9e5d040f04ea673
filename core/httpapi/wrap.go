package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
)

// WrapTTL reads the response-wrapping request headers as Vault does:
// X-Vault-Wrap-TTL is whole seconds or a duration ("5m"); 0 or absent
// means no wrapping; a negative or unreadable value is an error.
// X-Vault-Wrap-Format may be "token" (the default); JWT wrapping tokens
// are not supported and are refused rather than silently issued as tokens.
func WrapTTL(h http.Header) (time.Duration, error) {
	v := strings.TrimSpace(h.Get("X-Vault-Wrap-TTL"))
	if v == "" {
		return 0, nil
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(v); err != nil {
		return 0, core.Invalid("error parsing X-Vault-Wrap-TTL header: %v", err)
	}
	if d < 0 {
		return 0, core.Invalid("error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative")
	}
	switch f := strings.ToLower(strings.TrimSpace(h.Get("X-Vault-Wrap-Format"))); f {
	case "", "token", "uuid":
	default:
		return 0, core.Invalid("X-Vault-Wrap-Format %q is not supported: only token wrapping is", f)
	}
	return d, nil
}

// wrappedOnly is what the client gets of a wrapped response: its wrap_info,
// warnings and headers, nothing else (the response's data stays for the
// audit entry only).
func wrappedOnly(resp *core.Response) *core.Response {
	if resp == nil || resp.WrapInfo == nil {
		return resp
	}
	return &core.Response{WrapInfo: resp.WrapInfo, Warnings: resp.Warnings, Headers: resp.Headers}
}
