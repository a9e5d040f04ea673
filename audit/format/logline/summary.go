package logline

import (
	"time"

	json "github.com/goccy/go-json"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/vault"
)

// summaryLine is the part of a line ParseSummary decodes: the members a
// row of typed columns needs, and nothing under request or response data,
// headers or metadata (skipped without being built).
type summaryLine struct {
	Time     string          `json:"time"`
	Type     string          `json:"type"`
	Error    string          `json:"error"`
	Auth     *summaryAuth    `json:"auth"`
	Request  *summaryRequest `json:"request"`
	Response *struct {
		Auth *summaryAuth `json:"auth"`
	} `json:"response"`
	Vigil *struct {
		Status    int    `json:"status"`
		ErrorCode string `json:"error_code"`
		Identity  *struct {
			Actor      string `json:"actor"`
			EntityName string `json:"entity_name"`
		} `json:"identity"`
	} `json:"vigil"`
	Segment *struct {
		Created time.Time `json:"created"`
	} `json:"segment"`
	Event *struct {
		Time time.Time `json:"time"`
	} `json:"event"`
	Checkpoint *struct {
		Time string `json:"time"`
	} `json:"checkpoint"`
}

type summaryAuth struct {
	Accessor      string   `json:"accessor"`
	DisplayName   string   `json:"display_name"`
	Policies      []string `json:"policies"`
	EntityID      string   `json:"entity_id"`
	PolicyResults *struct {
		Allowed bool `json:"allowed"`
	} `json:"policy_results"`
}

type summaryRequest struct {
	ID         string `json:"id"`
	Operation  string `json:"operation"`
	MountType  string `json:"mount_type"`
	MountPoint string `json:"mount_point"`
	Path       string `json:"path"`
	RemoteAddr string `json:"remote_address"`
}

func (a *summaryAuth) auth() *vault.Auth {
	if a == nil {
		return nil
	}
	out := &vault.Auth{Accessor: a.Accessor, DisplayName: a.DisplayName, Policies: a.Policies, EntityID: a.EntityID}
	if a.PolicyResults != nil {
		out.PolicyResults = &vault.PolicyResults{Allowed: a.PolicyResults.Allowed}
	}
	return out
}

// ParseSummary decodes the part of line that typed columns use: time,
// type, error, the caller (accessor, display name, entity id, policies,
// policy_results.allowed), the request's id, operation, mount, path and
// remote address, a login response's auth, vigil.status,
// vigil.error_code and vigil.identity's actor and entity_name, the chain
// members and At — with Line's methods
// (Request, Auth, Vigil, Allowed, Denied, Failed, IsLogin, IsRecord)
// answering as they do after Parse. Everything else (data, headers,
// metadata, secrets; of a chain record's payload, all but its time) is
// left empty. It is several times cheaper than Parse.
// Errors as Parse.
func ParseSummary(line []byte) (*Line, error) {
	m, err := ScanMembers(line)
	if err != nil {
		return nil, err
	}
	var s summaryLine
	if err := json.Unmarshal(line, &s); err != nil {
		return nil, err
	}
	l := &Line{Seq: m.Seq, NodeID: m.NodeID, PrevHash: m.PrevHash, Hash: m.Hash}
	l.Time, l.Type, l.Error = s.Time, s.Type, s.Error
	l.Entry.Auth = s.Auth.auth()
	if r := s.Request; r != nil {
		l.Entry.Request = &vault.Request{ID: r.ID, Operation: r.Operation, MountType: r.MountType, MountPoint: r.MountPoint, Path: r.Path, RemoteAddr: r.RemoteAddr}
	}
	if s.Response != nil {
		l.Entry.Response = &vault.Response{Auth: s.Response.Auth.auth()}
	}
	if s.Vigil != nil {
		l.Entry.Vigil = &vault.Vigil{Status: s.Vigil.Status, ErrorCode: s.Vigil.ErrorCode}
		if id := s.Vigil.Identity; id != nil {
			l.Entry.Vigil.Identity = &vault.Identity{Actor: id.Actor, EntityName: id.EntityName}
		}
	}
	switch {
	case l.Time != "":
		l.At, _ = time.Parse(time.RFC3339Nano, l.Time)
	case s.Segment != nil:
		l.At = s.Segment.Created
		l.Segment = &chain.SegmentHeader{Created: s.Segment.Created}
	case s.Event != nil:
		l.At = s.Event.Time
		l.Event = &chain.Event{Time: s.Event.Time}
	case s.Checkpoint != nil:
		l.At, _ = time.Parse(time.RFC3339Nano, s.Checkpoint.Time)
		l.Checkpoint = &CheckpointBody{Time: s.Checkpoint.Time}
	}
	return l, nil
}
