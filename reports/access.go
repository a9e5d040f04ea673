package reports

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/reports/query"
)

// The access review: who CAN reach the regulated data now (policies,
// entities and their groups, tokens), who held access and did not use it
// in the period (recertification candidates), and the break-glass
// episodes with their initiator, reason, approver and end.

// grant is what one policy allows on one scope entry.
type grant struct {
	read, write bool
}

// scopePrefix is the path prefix a scope entry's requests start with:
// the mount ("phi/"), or for a tagged KV v2 secret its data path
// ("secret/data/app/db").
func (g *gen) scopePrefix(entry string) string {
	if g.scopeQ[entry][0] == "mount" {
		return entry
	}
	for mount, keys := range g.secrets {
		for key, sc := range keys {
			if sc.name == entry {
				return mount + "data/" + key
			}
		}
	}
	return entry
}

// literalPrefix is a Vault policy pattern up to its first glob ('*' or
// '+').
func literalPrefix(p string) string {
	if i := strings.IndexAny(p, "*+"); i >= 0 {
		return p[:i]
	}
	return p
}

// overlaps reports whether a policy pattern can match a path under
// prefix: one of the two literal prefixes extends the other.
func overlaps(pattern, prefix string) bool {
	lp := literalPrefix(pattern)
	if !strings.ContainsAny(pattern, "*+") {
		return strings.HasPrefix(pattern, prefix) || pattern+"/" == prefix || pattern == strings.TrimSuffix(prefix, "/")
	}
	return strings.HasPrefix(lp, prefix) || strings.HasPrefix(prefix, lp)
}

// policyGrants evaluates the ACL policies: for each policy and scope
// entry, whether a path rule can grant read (read, list) or write
// (create, update, patch, delete) on a path under it. A rule denying a
// narrower path does not take the grant away (the review lists who may
// reach some of the data); root grants everything.
func (g *gen) policyGrants() map[string]map[string]grant {
	out := map[string]map[string]grant{}
	for _, p := range g.env.Policies {
		for _, entry := range g.scope {
			prefix := g.scopePrefix(entry)
			var gr grant
			for _, r := range p.Paths {
				// A namespace's policies name paths relative to it; the
				// scope entries are full paths.
				if !overlaps(g.p.Namespace.Path+r.Pattern, prefix) || slices.Contains(r.Capabilities, authz.CapDeny) {
					continue
				}
				for _, c := range r.Capabilities {
					switch c {
					case "read", "list":
						gr.read = true
					case "create", "update", "patch", "delete":
						gr.write = true
					}
				}
			}
			if gr.read || gr.write {
				if out[p.Name] == nil {
					out[p.Name] = map[string]grant{}
				}
				out[p.Name][entry] = gr
			}
		}
	}
	return out
}

func accessText(gr grant) string {
	switch {
	case gr.read && gr.write:
		return "read, write"
	case gr.write:
		return "write"
	}
	return "read"
}

// ownNamespace reports whether an entity or token of namespace id ("" or
// "root" for the root) is the report's: policies are matched by name, and
// a name means another policy in every namespace, so a holder is counted
// in its own namespace only.
func (g *gen) ownNamespace(id string) bool {
	if ns := g.p.Namespace; !ns.IsRoot() {
		return id == ns.ID
	}
	return id == "" || id == core.RootNamespaceID
}

// holder is an entity or a token that can reach a scope entry.
type holder struct {
	kind, name, through string
	key                 string // actorKey of its records
	gr                  grant
}

func (g *gen) holders(entry string, grants map[string]map[string]grant) []holder {
	var out []holder
	union := func(pols []string) (grant, []string) {
		var gr grant
		var via []string
		if slices.Contains(pols, "root") {
			return grant{true, true}, []string{"root"}
		}
		for _, p := range pols {
			if x, ok := grants[p][entry]; ok {
				gr.read, gr.write = gr.read || x.read, gr.write || x.write
				via = append(via, p)
			}
		}
		return gr, via
	}
	for _, e := range g.env.Entities {
		if e.Disabled || !g.ownNamespace(e.NamespaceID) {
			continue
		}
		gr, via := union(e.Policies)
		through := "policy " + strings.Join(via, ", ")
		if len(e.Groups) > 0 {
			through += " (entity and groups: " + strings.Join(e.Groups, ", ") + ")"
		}
		// The policies an auth method gives the person's tokens
		// (token_policies of their user or role) are not in the identity
		// store: the latest ones their tokens carried in the log count.
		if tgr, tvia := union(g.lastPolicies["entity\x00"+e.ID]); len(tvia) > 0 {
			gr.read, gr.write = gr.read || tgr.read, gr.write || tgr.write
			if len(via) == 0 {
				through = ""
			} else {
				through += "; "
			}
			through += "token policy " + strings.Join(tvia, ", ") + " (as last issued by their auth method, from the log)"
			via = append(via, tvia...)
		}
		if len(via) == 0 {
			continue
		}
		name := e.Name
		if name == "" {
			name = e.ID
		}
		if len(e.Aliases) > 0 {
			name += " (" + strings.Join(e.Aliases, ", ") + ")"
		}
		out = append(out, holder{kind: "entity", name: name, through: through, key: "entity\x00" + e.ID, gr: gr})
	}
	for _, t := range g.env.Tokens {
		if !t.ExpireTime.IsZero() && !g.env.Now.Before(t.ExpireTime) || !g.ownNamespace(t.NamespaceID) {
			continue
		}
		gr, via := union(t.Policies)
		if len(via) == 0 {
			continue
		}
		name := t.DisplayName
		if t.EntityID != "" {
			name += " (entity " + t.EntityID + ")"
		}
		key := "actor\x00" + t.DisplayName
		if t.EntityID != "" {
			key = "entity\x00" + t.EntityID
		}
		out = append(out, holder{kind: "token", name: name + ", accessor " + t.Accessor, through: "token policy " + strings.Join(via, ", "), key: key, gr: gr})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].kind != out[j].kind {
			return out[i].kind < out[j].kind
		}
		return out[i].name < out[j].name
	})
	return out
}

func (g *gen) accessReview(id, title string, controls ...string) Section {
	s := Section{ID: id, Title: title, Controls: refs(controls...)}
	grants := g.policyGrants()
	can := Table{ID: "entitlements", Title: "Who can read or write each in-scope mount or secret now", Columns: []string{"Scope", "Access", "Holder", "Through"},
		Empty: "No policy, entity or token grants access to an in-scope mount or secret."}
	recert := Table{ID: "recertification-candidates", Title: "Access held but not used in the period (recertification candidates)",
		Columns: []string{"Holder", "Scope", "Access", "Requests in the period"}, Empty: "Every holder of access used it in the period."}
	holders, unused := 0, 0
	for _, entry := range g.scope {
		for _, h := range g.holders(entry, grants) {
			holders++
			can.Rows = append(can.Rows, []string{entry, accessText(h.gr), h.kind + " " + h.name, h.through})
			if g.usedScope[h.key+"\x00"+entry] == 0 {
				unused++
				recert.Rows = append(recert.Rows, []string{h.kind + " " + h.name, entry, accessText(h.gr), "0"})
			}
		}
	}
	var pols []string
	for p := range grants {
		pols = append(pols, p)
	}
	sort.Strings(pols)
	byPolicy := Table{ID: "granting-policies", Title: "Policies granting access to in-scope data", Columns: []string{"Policy", "Scope", "Access"},
		Empty: "No ACL policy grants access to in-scope data (root tokens still do)."}
	for _, p := range pols {
		var es []string
		for e := range grants[p] {
			es = append(es, e)
		}
		sort.Strings(es)
		for _, e := range es {
			byPolicy.Rows = append(byPolicy.Rows, []string{p, e, accessText(grants[p][e])})
		}
	}
	bg := g.breakGlassEpisodes()
	s.Figures = []Figure{
		{Key: "holders", Label: "Entities and tokens that can reach in-scope data now", Count: int64(holders)},
		{Key: "unused_access", Label: "... of which made no in-scope request in the period", Count: int64(unused)},
		{Key: "break_glass_episodes", Label: "Break-glass episodes (by initiator and ticket)", Count: int64(len(bg.Rows))},
		{Key: "break_glass", Label: "Break-glass requests (any path)", Count: g.bgCount, Check: g.allCheck("", "flag", "break_glass")},
	}
	s.Tables = []Table{can, byPolicy, recert, bg}
	s.Notes = []string{
		"Access is read from the ACL policies now in force: a policy counts when one of its path rules can match a path under the mount or secret (a narrower deny rule does not remove it). Rego policies decide per request (time, group, reason) and are not listed; their grants appear in the audit log as granting policies.",
		"Holders are enabled entities (their own and their groups' policies, and the token policies their auth method last issued them, as the log shows) and valid tokens (their token policies). A user or role of an auth method that has never logged in has no entity yet: list the auth methods' users and roles (vigil list auth/<mount>/users) for those.",
		"Approver: break-glass approval by control groups is not configured; the column shows the approver a policy recorded in the request's flags (approver), if any.",
	}
	switch {
	case len(g.scope) == 0:
		s.Result, s.ResultText = ResultInfo, "No mount or secret is in scope: nothing to review."
	case unused > 0 || len(bg.Rows) > 0:
		s.Result, s.ResultText = ResultAttention, fmt.Sprintf("%s of access to review (%s unused in the period); %s.",
			plural(int64(holders), "holder", "holders"), itoa(int64(unused)), plural(int64(len(bg.Rows)), "break-glass episode", "break-glass episodes"))
	default:
		s.Result, s.ResultText = ResultPass, fmt.Sprintf("%s of access, each used in the period; no break-glass.", plural(int64(holders), "holder", "holders"))
	}
	return s
}

// episode is one break-glass session: an initiator's flagged requests
// under one ticket.
type episode struct {
	actor, ticket, reason, approver string
	first, last                     time.Time
	n, denied                       int64
}

func (g *gen) breakGlassEpisodes() Table {
	t := Table{ID: "break-glass-episodes", Title: "Break-glass episodes", Columns: []string{"Initiator", "Reason", "Ticket", "Approver", "First request (" + g.tzName() + ")",
		"Last request", "Requests", "Token revoked"}, CountCol: 6, Empty: "No break-glass request in the period."}
	eps := map[string]*episode{}
	var order []string
	for _, r := range g.breakGlass {
		k := Actor(r) + "\x00" + r.Flags["break_glass_ticket"]
		e := eps[k]
		if e == nil {
			e = &episode{actor: Actor(r), ticket: r.Flags["break_glass_ticket"], reason: r.Flags["break_glass_reason"], first: r.Time}
			eps[k] = e
			order = append(order, k)
		}
		e.last, e.n = r.Time, e.n+1
		if a := r.Flags["approver"]; a != "" {
			e.approver = a
		}
		if !r.Allowed {
			e.denied++
		}
	}
	for _, k := range order {
		e := eps[k]
		appr := e.approver
		if appr == "" {
			appr = "none recorded"
		}
		ended := "not recorded (the token ends at its expiry)"
		for _, rv := range g.revokes[e.actor] {
			if !rv.Before(e.last) {
				ended = g.ts(rv)
				break
			}
		}
		t.Rows = append(t.Rows, []string{e.actor, e.reason, e.ticket, appr, g.ts(e.first), g.ts(e.last), itoa(e.n), ended})
		c := &Check{Queries: []string{g.queryString("flag", "break_glass_ticket="+e.ticket, "actor", e.actor)}, Match: "actor_is:" + e.actor}
		if e.ticket == "" {
			c = &Check{Queries: []string{g.queryString("flag", "break_glass", "actor", e.actor)}, Match: "actor_is:" + e.actor + ",no_ticket"}
		}
		t.RowChecks = append(t.RowChecks, c)
	}
	return t
}

// isRevoke reports whether a record revokes its own or another token.
func isRevoke(r query.Record) bool {
	return r.Allowed && r.Error == "" && strings.HasPrefix(r.Path, "auth/token/revoke")
}
