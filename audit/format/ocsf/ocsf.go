// Package ocsf renders lines of Vigil's local audit log as OCSF 1.3 events
// (https://schema.ocsf.io), one JSON object per line, for SIEMs that ingest
// the Open Cybersecurity Schema Framework.
//
// Mapping:
//
//   - Logins (a request to auth/<mount>/login[/<name>]) are Authentication
//     events (class_uid 3002, category 3, activity Logon).
//   - actor.user (and, for logins, user) is the person: name is the
//     canonical actor name (logline.Line.Actor: the entity's name, or
//     "<mount>/<alias>" for an entity nobody named, else the token's
//     display name), uid the entity id — the same spelling as the audit
//     query's actor and CEF's suser/suid.
//   - Every other Vault entry — secret reads and writes, sys/ calls, token
//     operations — is an API Activity event (class_uid 6003, category 6;
//     activity Create, Read, Update, Delete or Other from the Vault
//     operation), with actor.user, actor.session, actor.authorizations,
//     api.operation, api.request.uid, api.response, resources[],
//     src_endpoint and status_id.
//   - actor.authorizations lists the granting policies with their type
//     (acl or rego) and each deny reason of a mandatory rule as a denied
//     authorization (policy.desc); the deny reasons are also
//     status_detail.
//   - severity_id follows logline.Line.Severity: High (4) for break-glass
//     and for denials on mounts Options.Regulated names, Medium (3) for
//     other denials and root-token use, Low (2) for failures.
//   - Chain records (segment headers, checkpoints, events) are Base Events
//     (class_uid 0, activity Other): they must reach the sink so the chain
//     can be verified there.
//
// On every event: time is the entry's time in epoch milliseconds (the
// original RFC 3339 string, with nanoseconds, is metadata.original_time);
// metadata.uid is "<node_id>:<seq>", the idempotency key consumers dedupe
// on, and metadata.sequence is seq; the chain members (seq, node_id,
// prev_hash, hash) and the Vault fields OCSF has no place for are under
// unmapped; raw_data holds the original log line byte for byte unless
// Options.OmitRaw is set, so the hash chain can be re-verified from the
// events alone.
//
// Format is deterministic (struct members in a fixed order, map keys
// sorted) and safe for concurrent use.
package ocsf

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/format/vault"
)

// SchemaVersion is the OCSF version the events declare (metadata.version).
const SchemaVersion = "1.3.0"

// Class UIDs used.
const (
	ClassBase           = 0
	ClassAuthentication = 3002
	ClassAPIActivity    = 6003
)

// Options tune Format.
type Options struct {
	// ProductVersion is metadata.product.version (the Vigil version).
	ProductVersion string
	// OmitRaw leaves raw_data out: smaller events, but the chain can no
	// longer be verified from them.
	OmitRaw bool
	// Regulated reports whether a mount point holds regulated data
	// (phi=true or regulated=true): a denial there is High severity. nil:
	// no mount is.
	Regulated func(mount string) bool
}

// Event is the OCSF event Format encodes. Members are in output order.
type Event struct {
	ActivityID   int             `json:"activity_id"`
	ActivityName string          `json:"activity_name"`
	CategoryUID  int             `json:"category_uid"`
	CategoryName string          `json:"category_name"`
	ClassUID     int             `json:"class_uid"`
	ClassName    string          `json:"class_name"`
	TypeUID      int             `json:"type_uid"`
	TypeName     string          `json:"type_name"`
	SeverityID   int             `json:"severity_id"`
	Severity     string          `json:"severity"`
	StatusID     *int            `json:"status_id,omitempty"`
	Status       string          `json:"status,omitempty"`
	StatusCode   string          `json:"status_code,omitempty"`
	StatusDetail string          `json:"status_detail,omitempty"`
	Time         int64           `json:"time"`
	Message      string          `json:"message,omitempty"`
	Metadata     Metadata        `json:"metadata"`
	Actor        *Actor          `json:"actor,omitempty"`
	User         *User           `json:"user,omitempty"`
	API          *API            `json:"api,omitempty"`
	Resources    []Resource      `json:"resources,omitempty"`
	AuthProtoID  int             `json:"auth_protocol_id,omitempty"`
	AuthProtocol string          `json:"auth_protocol,omitempty"`
	Session      *Session        `json:"session,omitempty"`
	Service      *Service        `json:"service,omitempty"`
	SrcEndpoint  *Endpoint       `json:"src_endpoint,omitempty"`
	RawData      string          `json:"raw_data,omitempty"`
	Unmapped     json.RawMessage `json:"unmapped"`
}

// Metadata is OCSF's metadata object.
type Metadata struct {
	Version        string  `json:"version"`
	Product        Product `json:"product"`
	UID            string  `json:"uid"`
	Sequence       uint64  `json:"sequence"`
	CorrelationUID string  `json:"correlation_uid,omitempty"`
	EventCode      string  `json:"event_code,omitempty"`
	LogName        string  `json:"log_name"`
	LogProvider    string  `json:"log_provider"`
	OriginalTime   string  `json:"original_time,omitempty"`
}

// Product names Vigil.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version,omitempty"`
}

// Actor is who acted.
type Actor struct {
	User           *User           `json:"user,omitempty"`
	Session        *Session        `json:"session,omitempty"`
	Authorizations []Authorization `json:"authorizations,omitempty"`
	AppName        string          `json:"app_name,omitempty"`
}

// User is an OCSF user.
type User struct {
	Name   string `json:"name,omitempty"`
	UID    string `json:"uid,omitempty"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
}

// Session is the token: uid is its (HMAC'd) accessor, credential_uid its
// (HMAC'd) value.
type Session struct {
	UID           string `json:"uid,omitempty"`
	CredentialUID string `json:"credential_uid,omitempty"`
}

// Authorization is one granting policy.
type Authorization struct {
	Decision string `json:"decision"`
	Policy   Policy `json:"policy"`
}

// Policy names a policy; Desc carries a deny reason.
type Policy struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
	Desc string `json:"desc,omitempty"`
}

// API is the api object of API Activity.
type API struct {
	Operation string       `json:"operation"`
	Request   *APIRequest  `json:"request,omitempty"`
	Response  *APIResponse `json:"response,omitempty"`
	Service   *Service     `json:"service,omitempty"`
}

// APIRequest identifies the request.
type APIRequest struct {
	UID string `json:"uid"`
}

// APIResponse is the outcome.
type APIResponse struct {
	Code         int    `json:"code,omitempty"`
	Error        string `json:"error,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
}

// Service names the engine or auth method.
type Service struct {
	Name string `json:"name"`
}

// Resource is the path acted on.
type Resource struct {
	Name  string         `json:"name"`
	Type  string         `json:"type,omitempty"`
	UID   string         `json:"uid,omitempty"`
	Group *ResourceGroup `json:"group,omitempty"`
}

// ResourceGroup is the mount.
type ResourceGroup struct {
	Name string `json:"name"`
}

// Endpoint is the client address.
type Endpoint struct {
	IP   string `json:"ip,omitempty"`
	Port int    `json:"port,omitempty"`
}

// Unmapped holds what OCSF has no attribute for. Chain members first.
type Unmapped struct {
	Seq        uint64 `json:"seq"`
	NodeID     string `json:"node_id"`
	PrevHash   string `json:"prev_hash"`
	Hash       string `json:"hash"`
	VaultType  string `json:"vault_type"`
	MountPoint string `json:"mount_point,omitempty"`
	// Namespace is the entry's request.namespace ({id, path}) for a
	// request made in a namespace other than the root; absent for the
	// root namespace.
	Namespace *vault.Namespace `json:"namespace,omitempty"`
	Policies  []string         `json:"policies,omitempty"`
	Vigil     *vault.Vigil     `json:"vigil,omitempty"`
	Record    json.RawMessage  `json:"record,omitempty"`
}

// Format renders one local log line (without its newline) as an OCSF event.
// Errors: logline.ErrMalformed or a JSON error for a line that does not
// parse.
func Format(line []byte, o Options) ([]byte, error) {
	l, err := logline.Parse(line)
	if err != nil {
		return nil, err
	}
	return marshal(Build(l, line, o))
}

// Marshal encodes an event built with Build exactly as Format does.
func Marshal(ev *Event) ([]byte, error) { return marshal(ev) }

// marshal encodes without HTML escaping (SIEMs read "&", not "\u0026").
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Build maps a parsed line to an OCSF event. raw is the original line.
func Build(l *logline.Line, raw []byte, o Options) *Event {
	ev := &Event{
		Time: l.At.UnixMilli(),
		Metadata: Metadata{
			Version: SchemaVersion, Product: Product{Name: "Vigil", VendorName: "Vigil", Version: o.ProductVersion},
			UID: l.NodeID + ":" + strconv.FormatUint(l.Seq, 10), Sequence: l.Seq, EventCode: l.Type,
			LogName: "audit", LogProvider: l.NodeID, OriginalTime: originalTime(l),
		},
		SeverityID: 1, Severity: "Informational",
	}
	if l.At.IsZero() {
		ev.Time = 0
	}
	if !o.OmitRaw {
		ev.RawData = string(raw)
	}
	um := Unmapped{Seq: l.Seq, NodeID: l.NodeID, PrevHash: l.PrevHash, Hash: l.Hash, VaultType: l.Type}
	if l.IsRecord() {
		buildRecord(ev, l, &um)
	} else {
		buildEntry(ev, l, &um, o)
	}
	ev.Unmapped, _ = marshal(um)
	return ev
}

func originalTime(l *logline.Line) string {
	switch {
	case l.Time != "":
		return l.Time
	case l.Checkpoint != nil:
		return l.Checkpoint.Time
	}
	if !l.At.IsZero() {
		return l.At.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
	}
	return ""
}

func buildRecord(ev *Event, l *logline.Line, um *Unmapped) {
	ev.ActivityID, ev.ActivityName = 99, "Other"
	ev.CategoryUID, ev.CategoryName = 0, "Uncategorized"
	ev.ClassUID, ev.ClassName = ClassBase, "Base Event"
	ev.TypeUID, ev.TypeName = 99, "Base Event: Other"
	var rec any
	switch {
	case l.Segment != nil:
		ev.Message = "audit log segment " + strconv.FormatUint(l.Segment.Index, 10) + " started (" + l.Segment.Reason + ")"
		rec = l.Segment
	case l.Checkpoint != nil:
		ev.Message = "audit chain checkpoint at seq " + strconv.FormatUint(l.Checkpoint.Seq, 10)
		rec = struct {
			Checkpoint *logline.CheckpointBody `json:"checkpoint"`
			Signature  string                  `json:"signature"`
			KeyID      string                  `json:"key_id"`
		}{l.Checkpoint, l.Signature, l.KeyID}
	case l.Event != nil:
		ev.Message = "audit log event " + l.Event.Kind
		if l.Event.Detail != "" {
			ev.Message += ": " + l.Event.Detail
		}
		rec = l.Event
	default:
		ev.Message = "audit chain record " + l.Type
	}
	if rec != nil {
		um.Record, _ = marshal(rec)
	}
}

func buildEntry(ev *Event, l *logline.Line, um *Unmapped, o Options) {
	req, auth, vg := l.Request(), l.Auth(), l.Vigil()
	um.MountPoint, um.Policies = req.MountPoint, auth.Policies
	if ns := req.Namespace; ns != nil && ns.Path != "" {
		um.Namespace = ns
	}
	if l.Entry.Vigil != nil {
		um.Vigil = l.Entry.Vigil
	}
	ev.Metadata.CorrelationUID = req.ID
	failed := l.Failed()
	if lvl, _ := l.Severity(o.Regulated); lvl > ev.SeverityID {
		ev.SeverityID, ev.Severity = lvl, logline.SeverityName(lvl)
	}
	switch {
	case failed:
		st := 2
		ev.StatusID, ev.Status = &st, "Failure"
		ev.StatusDetail = l.Error
		if len(vg.DenyReasons) > 0 {
			ev.StatusDetail = strings.Join(vg.DenyReasons, "; ")
		}
	case l.Type == "response":
		st := 1
		ev.StatusID, ev.Status = &st, "Success"
	default: // a request entry: the outcome is in the response entry
		st := 0
		ev.StatusID, ev.Status = &st, "Unknown"
	}
	if vg.Status != 0 {
		ev.StatusCode = strconv.Itoa(vg.Status)
	}
	if req.RemoteAddr != "" || req.RemotePort != 0 {
		ev.SrcEndpoint = &Endpoint{IP: req.RemoteAddr, Port: req.RemotePort}
	}
	if l.IsLogin() {
		buildLogin(ev, l)
		return
	}
	ev.CategoryUID, ev.CategoryName = 6, "Application Activity"
	ev.ClassUID, ev.ClassName = ClassAPIActivity, "API Activity"
	ev.ActivityID, ev.ActivityName = apiActivity(req.Operation)
	ev.TypeUID, ev.TypeName = ClassAPIActivity*100+ev.ActivityID, "API Activity: "+ev.ActivityName
	ev.Message = strings.TrimSpace(req.Operation + " " + req.Path)
	ev.Actor = actor(l)
	api := &API{Operation: req.Operation}
	if req.ID != "" {
		api.Request = &APIRequest{UID: req.ID}
	}
	if vg.Status != 0 || l.Error != "" || vg.ErrorCode != "" {
		api.Response = &APIResponse{Code: vg.Status, Error: vg.ErrorCode, ErrorMessage: l.Error}
	}
	if req.MountType != "" {
		api.Service = &Service{Name: req.MountType}
	}
	ev.API = api
	if req.Path != "" {
		r := Resource{Name: req.Path, Type: req.MountType, UID: req.MountAccessor}
		if req.MountPoint != "" {
			r.Group = &ResourceGroup{Name: req.MountPoint}
		}
		ev.Resources = []Resource{r}
	}
}

func buildLogin(ev *Event, l *logline.Line) {
	req := l.Request()
	ev.CategoryUID, ev.CategoryName = 3, "Identity & Access Management"
	ev.ClassUID, ev.ClassName = ClassAuthentication, "Authentication"
	ev.ActivityID, ev.ActivityName = 1, "Logon"
	ev.TypeUID, ev.TypeName = ClassAuthentication*100+1, "Authentication: Logon"
	name := l.Actor()
	u := &User{Name: name, UID: l.ActorEntityID(), TypeID: 1, Type: "User"}
	if r := l.Entry.Response; r != nil && r.Auth != nil {
		ev.Session = &Session{UID: r.Auth.Accessor, CredentialUID: r.Auth.ClientToken}
	}
	ev.User = u
	ev.Actor = &Actor{User: u}
	ev.AuthProtoID, ev.AuthProtocol = 99, req.MountType
	if req.MountPoint != "" {
		ev.Service = &Service{Name: req.MountPoint}
	}
	ev.Message = strings.TrimSpace("login " + name + " via " + req.MountPoint)
}

// apiActivity maps a Vault operation to an API Activity activity.
func apiActivity(op string) (int, string) {
	switch op {
	case "create":
		return 1, "Create"
	case "read", "list":
		return 2, "Read"
	case "update", "patch":
		return 3, "Update"
	case "delete":
		return 4, "Delete"
	case "":
		return 0, "Unknown"
	}
	return 99, "Other"
}

func actor(l *logline.Line) *Actor {
	a, vg := l.Auth(), l.Vigil()
	act := &Actor{AppName: vg.Actor}
	name := l.Actor()
	if name != "" || a.EntityID != "" {
		act.User = &User{Name: name, UID: a.EntityID, TypeID: 1, Type: "User"}
		if vg.Actor != "" {
			act.User.TypeID, act.User.Type = 3, "System"
		}
	}
	if a.Accessor != "" || a.ClientToken != "" {
		act.Session = &Session{UID: a.Accessor, CredentialUID: a.ClientToken}
	}
	if pr := a.PolicyResults; pr != nil {
		dec := "denied"
		if pr.Allowed {
			dec = "allowed"
		}
		for _, p := range pr.GrantingPolicies {
			act.Authorizations = append(act.Authorizations, Authorization{Decision: dec, Policy: Policy{Name: p.Name, Type: p.Type}})
		}
		if len(pr.GrantingPolicies) == 0 && len(vg.DenyReasons) == 0 {
			act.Authorizations = []Authorization{{Decision: dec, Policy: Policy{Name: "none"}}}
		}
	}
	// Each deny reason of a mandatory rule is a denied authorization.
	for _, r := range vg.DenyReasons {
		act.Authorizations = append(act.Authorizations, Authorization{Decision: "denied", Policy: Policy{Name: "deny", Type: "rego", Desc: r}})
	}
	if act.User == nil && act.Session == nil && act.AppName == "" && act.Authorizations == nil {
		return nil
	}
	return act
}
