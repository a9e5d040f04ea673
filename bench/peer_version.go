package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// peerRelease is what `<peer> version` says: the product and its release.
type peerRelease struct {
	Product             string // "OpenBao", "Vault", "Vigil" or "" if not recognised
	Major, Minor, Patch int
	Raw                 string // the first line of the output
}

var releaseRE = regexp.MustCompile(`^(OpenBao|Vault|Vigil)\s+v?(\d+)\.(\d+)\.(\d+)`)

// parsePeerRelease reads the first line of a `version` command's output,
// e.g. "OpenBao v2.5.5" or "Vault v1.19.0 (...)".
func parsePeerRelease(out string) peerRelease {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	r := peerRelease{Raw: strings.TrimSpace(line)}
	m := releaseRE.FindStringSubmatch(r.Raw)
	if m == nil {
		return r
	}
	r.Product = m[1]
	r.Major, _ = strconv.Atoi(m[2])
	r.Minor, _ = strconv.Atoi(m[3])
	r.Patch, _ = strconv.Atoi(m[4])
	return r
}

// atLeast reports whether the release is major.minor.patch or later.
func (r peerRelease) atLeast(major, minor, patch int) bool {
	if r.Major != major {
		return r.Major > major
	}
	if r.Minor != minor {
		return r.Minor > minor
	}
	return r.Patch >= patch
}

// peerAuditMode is how a peer's file audit device is enabled.
type peerAuditMode int

const (
	// auditViaAPI: PUT sys/audit/<path> after unseal.
	auditViaAPI peerAuditMode = iota
	// auditViaAPIUnsafe: the same, with unsafe_allow_api_audit_creation
	// set in the configuration (OpenBao 2.3.2 to 2.3.x refuse it
	// otherwise and have no declarative form yet).
	auditViaAPIUnsafe
	// auditDeclarative: an `audit "file" "file" { options { file_path } }`
	// block in the configuration (OpenBao 2.4 and later; the active node
	// creates the device after unseal).
	auditDeclarative
)

// auditModeFor chooses how to enable the audit device of kind at release
// r. An OpenBao release that cannot be read is taken to be current.
func auditModeFor(kind string, r peerRelease) peerAuditMode {
	if kind != "openbao" {
		return auditViaAPI
	}
	switch {
	case r.Product != "OpenBao" || r.atLeast(2, 4, 0):
		return auditDeclarative
	case r.atLeast(2, 3, 2):
		return auditViaAPIUnsafe
	default:
		return auditViaAPI
	}
}

// peerReleaseOf runs `bin version`.
func peerReleaseOf(ctx context.Context, bin string) (peerRelease, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		return peerRelease{}, fmt.Errorf("%s version: %w: %s", bin, err, strings.TrimSpace(string(out)))
	}
	return parsePeerRelease(string(out)), nil
}

// peerAuditConfig is the configuration text for mode (empty for the API
// modes but auditViaAPIUnsafe's switch).
func peerAuditConfig(mode peerAuditMode, auditLog string) string {
	switch mode {
	case auditDeclarative:
		return fmt.Sprintf("audit \"file\" \"file\" {\n  options {\n    file_path = %q\n  }\n}\n", auditLog)
	case auditViaAPIUnsafe:
		return "unsafe_allow_api_audit_creation = true\n"
	}
	return ""
}
