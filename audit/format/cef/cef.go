// Package cef renders lines of Vigil's local audit log as ArcSight Common
// Event Format (CEF:0) lines, one per entry:
//
//	CEF:0|Vigil|Vigil|<version>|<signature id>|<name>|<severity>|<extension>
//
// Signature id is "<request|response>:<operation>" for Vault entries,
// "login" for logins, and the record type ("vigil.checkpoint", ...) for chain
// records. Severity follows the OCSF rating (logline.Line.Severity): 1 for
// chain records, 3 for successful or pending operations, 5 for failures, 6
// for denials and root-token use, 8 for break-glass and denials on
// regulated (PHI) mounts.
//
// Extension keys, always in this order and omitted when empty:
//
//	rt           entry time, epoch milliseconds
//	externalId   "<node_id>:<seq>", the idempotency key consumers dedupe on
//	cat          "request", "response" or the chain record type
//	act          Vault operation (read, create, update, delete, list, ...)
//	request      request path
//	suser, suid  canonical actor name (logline.Line.Actor: the entity's
//	             name, or "<mount>/<alias>" for an entity nobody named, else
//	             the token's display name) and entity id; for logins, the
//	             person logging in
//	src, spt     client address and port
//	outcome      success, failure or unknown (request entries)
//	reason       error message, or the deny reasons when a rule denied
//	dvchost      node id
//	cs1          token policies (comma-separated)    cs1Label=policies
//	cs2          mount point                         cs2Label=mountPoint
//	cs3          request id                          cs3Label=requestId
//	cs4          granting policies, name:type        cs4Label=grantingPolicies
//	             (type acl or rego), comma-separated
//	cs5          deny reasons, "; "-separated        cs5Label=denyReasons
//	cs6          decision flags, name=value pairs    cs6Label=flags
//	             sorted by name, ";"-separated (break_glass, reasons, tickets)
//	flexString1  Vigil error code                    flexString1Label=errorCode
//	flexString2  severity rule (break_glass,         flexString2Label=severityReason
//	             denied_regulated, denied, root_token, failed)
//	cn1          seq                                 cn1Label=seq
//	cn2          HTTP status                         cn2Label=httpStatus
//	vigilNamespace, vigilNamespaceId  the namespace's path and id, outside
//	             the root namespace (vendor-defined keys)
//	vigilPrevHash, vigilHash  the chain members (vendor-defined keys)
//	vigilRawLine the original log line, byte for byte (vendor-defined key;
//	             left out with Options.OmitRaw), so the chain can be
//	             re-verified from the CEF stream
//
// Header fields escape "\" and "|"; extension values escape "\", "=" and
// line breaks, as the CEF specification requires. Format is deterministic
// and safe for concurrent use.
package cef

import (
	"sort"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/audit/format/logline"
)

// Options tune Format.
type Options struct {
	// ProductVersion is the Device Version header field (the Vigil version).
	ProductVersion string
	// OmitRaw leaves the vigilRawLine extension out.
	OmitRaw bool
	// Regulated reports whether a mount point holds regulated data (see
	// logline.Line.Severity). nil: no mount is.
	Regulated func(mount string) bool
}

// cefSeverity maps logline severity levels to CEF's 0-10 scale.
var cefSeverity = map[int]int{logline.SeverityInfo: 3, logline.SeverityLow: 5, logline.SeverityMedium: 6, logline.SeverityHigh: 8}

// Format renders one local log line (without its newline) as one CEF line
// (without a newline). Errors: logline.ErrMalformed or a JSON error for a
// line that does not parse.
func Format(line []byte, o Options) ([]byte, error) {
	l, err := logline.Parse(line)
	if err != nil {
		return nil, err
	}
	return Build(l, line, o), nil
}

// Build renders a parsed line; raw is the original line.
func Build(l *logline.Line, raw []byte, o Options) []byte {
	var sig, name string
	sev := 3
	e := ext{b: make([]byte, 0, 512+len(raw)*2)}
	if !l.At.IsZero() {
		e.add("rt", strconv.FormatInt(l.At.UnixMilli(), 10))
	}
	e.add("externalId", l.NodeID+":"+strconv.FormatUint(l.Seq, 10))
	e.add("cat", l.Type)
	if l.IsRecord() {
		sig, sev = l.Type, 1
		switch {
		case l.Segment != nil:
			name = "audit log segment " + strconv.FormatUint(l.Segment.Index, 10) + " started (" + l.Segment.Reason + ")"
		case l.Checkpoint != nil:
			name = "audit chain checkpoint at seq " + strconv.FormatUint(l.Checkpoint.Seq, 10)
		case l.Event != nil:
			name = "audit log event " + l.Event.Kind
			e.add("msg", l.Event.Detail)
		default:
			name = "audit chain record " + l.Type
		}
		e.add("dvchost", l.NodeID)
	} else {
		req, auth, vg := l.Request(), l.Auth(), l.Vigil()
		sig = l.Type + ":" + req.Operation
		name = strings.TrimSpace(req.MountType + " " + req.Operation + " " + req.Path)
		if l.IsLogin() {
			sig = "login"
			name = strings.TrimSpace("login " + l.Actor() + " via " + req.MountPoint)
		}
		e.add("act", req.Operation)
		e.add("request", req.Path)
		e.add("suser", l.Actor())
		e.add("suid", l.ActorEntityID())
		e.add("src", req.RemoteAddr)
		if req.RemotePort != 0 {
			e.add("spt", strconv.Itoa(req.RemotePort))
		}
		switch {
		case l.Failed():
			e.add("outcome", "failure")
		case l.Type == "response":
			e.add("outcome", "success")
		default:
			e.add("outcome", "unknown")
		}
		lvl, why := l.Severity(o.Regulated)
		sev = cefSeverity[lvl]
		reason := l.Error
		if len(vg.DenyReasons) > 0 {
			reason = strings.Join(vg.DenyReasons, "; ")
		}
		e.add("reason", reason)
		e.add("dvchost", l.NodeID)
		e.labelled("cs1", "policies", strings.Join(auth.Policies, ","))
		e.labelled("cs2", "mountPoint", req.MountPoint)
		e.labelled("cs3", "requestId", req.ID)
		if pr := auth.PolicyResults; pr != nil {
			var g []string
			for _, p := range pr.GrantingPolicies {
				g = append(g, p.Name+":"+p.Type)
			}
			e.labelled("cs4", "grantingPolicies", strings.Join(g, ","))
		}
		e.labelled("cs5", "denyReasons", strings.Join(vg.DenyReasons, "; "))
		e.labelled("cs6", "flags", flagString(vg.Flags))
		e.labelled("flexString1", "errorCode", vg.ErrorCode)
		e.labelled("flexString2", "severityReason", why)
	}
	e.labelled("cn1", "seq", strconv.FormatUint(l.Seq, 10))
	if !l.IsRecord() && l.Vigil().Status != 0 {
		e.labelled("cn2", "httpStatus", strconv.Itoa(l.Vigil().Status))
	}
	if !l.IsRecord() {
		if ns := l.Request().Namespace; ns != nil && ns.Path != "" {
			e.add("vigilNamespace", ns.Path)
			e.add("vigilNamespaceId", ns.ID)
		}
	}
	e.add("vigilPrevHash", l.PrevHash)
	e.add("vigilHash", l.Hash)
	if !o.OmitRaw {
		e.add("vigilRawLine", string(raw))
	}

	out := make([]byte, 0, len(e.b)+128)
	out = append(out, "CEF:0|Vigil|Vigil|"...)
	out = appendHeader(out, o.ProductVersion)
	out = append(out, '|')
	out = appendHeader(out, sig)
	out = append(out, '|')
	out = appendHeader(out, name)
	out = append(out, '|')
	out = strconv.AppendInt(out, int64(sev), 10)
	out = append(out, '|')
	out = append(out, e.b...)
	return out
}

// ext builds the extension: space-separated key=value pairs.
type ext struct{ b []byte }

func (e *ext) add(k, v string) {
	if v == "" {
		return
	}
	if len(e.b) > 0 {
		e.b = append(e.b, ' ')
	}
	e.b = append(e.b, k...)
	e.b = append(e.b, '=')
	e.b = appendValue(e.b, v)
}

// labelled adds a custom key with its label (label first, as ArcSight
// connectors emit them).
func (e *ext) labelled(k, label, v string) {
	if v == "" {
		return
	}
	e.add(k+"Label", label)
	e.add(k, v)
}

// appendHeader escapes a header field: "\" and "|"; line breaks become
// spaces (they are not allowed in the header).
func appendHeader(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '|':
			dst = append(dst, '\\', c)
		case '\n', '\r':
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendValue escapes an extension value: "\", "=" and line breaks.
func appendValue(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '=':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// Unescape reverses the extension value escaping (for consumers and tests).
func Unescape(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
			switch v[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(v[i])
			}
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// Extension parses the extension of a CEF line produced by Format into a
// map of unescaped values. It splits on the unescaped " key=" boundaries,
// so values may contain spaces.
func Extension(line string) map[string]string {
	// Skip the 7 header fields (escaped pipes do not count).
	n, i := 0, 0
	for ; i < len(line) && n < 7; i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	rest := line[i:]
	out := map[string]string{}
	// Find unescaped '=' positions; a key is the token before it.
	type kv struct{ kStart, eq int }
	var marks []kv
	for j := 0; j < len(rest); j++ {
		if rest[j] == '\\' {
			j++
			continue
		}
		if rest[j] == '=' {
			k := j
			for k > 0 && rest[k-1] != ' ' {
				k--
			}
			marks = append(marks, kv{k, j})
		}
	}
	for m, mk := range marks {
		end := len(rest)
		if m+1 < len(marks) {
			end = marks[m+1].kStart - 1
		}
		out[rest[mk.kStart:mk.eq]] = Unescape(rest[mk.eq+1 : end])
	}
	return out
}

// flagString renders decision flags as sorted name=value pairs joined by ";".
func flagString(f map[string]string) string {
	if len(f) == 0 {
		return ""
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + f[k]
	}
	return strings.Join(parts, ";")
}
