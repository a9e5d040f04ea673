package querysvc

import _ "embed"

// AuditorPolicy is the example ACL policy that lets a token query the audit
// trail and do nothing else (auditor.hcl in this package).
//
//go:embed auditor.hcl
var AuditorPolicy string
