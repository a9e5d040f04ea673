package tokenutil

import (
	"net/netip"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// ParseCIDRs validates a list of CIDR blocks or single addresses (Vault's
// token_bound_cidrs, secret_id_bound_cidrs, cidr_list) and returns them in
// canonical form ("10.0.0.1" becomes "10.0.0.1/32"). Errors are
// CodeInvalid and name the bad entry and field.
func ParseCIDRs(field string, in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, core.Invalid("invalid %s entry %q: not an IP address or CIDR block", field, s)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()).String())
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, core.Invalid("invalid %s entry %q: %v", field, s, err)
		}
		out = append(out, p.Masked().String())
	}
	return out, nil
}

// AddrAllowed reports whether the client address addr (an IP, as in
// core.Request.RemoteAddr) lies in one of cidrs. An empty list allows every
// address; an address that does not parse is never allowed by a non-empty
// list (fail closed).
func AddrAllowed(addr string, cidrs []string) bool {
	if len(cidrs) == 0 {
		return true
	}
	a, err := netip.ParseAddr(strings.TrimSpace(addr))
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			continue
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// SubsetCIDRs reports whether every block of sub lies inside some block of
// of (used for a secret ID's CIDRs against its role's).
func SubsetCIDRs(sub, of []string) bool {
	if len(of) == 0 {
		return true
	}
	for _, s := range sub {
		sp, err := netip.ParsePrefix(s)
		if err != nil {
			return false
		}
		ok := false
		for _, o := range of {
			op, err := netip.ParsePrefix(o)
			if err == nil && op.Bits() <= sp.Bits() && op.Contains(sp.Addr()) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// ErrOutsideCIDRs is the 403 for a login or request from an address outside
// the bound CIDRs. what names the list ("token_bound_cidrs").
func ErrOutsideCIDRs(addr, what string) error {
	return core.Errorf(core.CodePermissionDenied, "permission denied: source address %s is not allowed by %s", addr, what)
}
