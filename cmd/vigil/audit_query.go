package main

// `vigil audit query`: who accessed which secret, when, with what
// operation, and was it allowed (GET sys/audit/query, reports/query).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

func init() {
	register(&command{name: "audit query", synopsis: "Query the audit trail: who accessed what, when, and was it allowed", run: runAuditQuery})
}

// runAuditQuery is `vigil audit query [--since] [--until] [--actor] [--path]
// [--operation] [--allowed] [--mount] [--flag] [--limit] [--format]`.
func runAuditQuery(args []string) int {
	var cf clientFlags
	fs := newFlags("audit query", &cf)
	setUsage(fs, "audit query [options]", `
Lists audited requests matching the options, oldest first: time, actor
(the person: entity name, or <mount>/<alias> for an entity nobody named,
else the token's display name), client address, operation,
path, decision and granting policy. Results are computed against a signed
checkpoint of the audit log, which is printed with them (table format: at
the end; csv and ocsf: on stderr; json: in the document).

--since and --until take RFC 3339 times (2024-05-01T00:00:00Z), dates
(2024-05-01) or durations before now (24h, 7d, 2w). --path is a prefix
(secret/data/prod/) or a glob matched against the whole path
(secret/data/*/db, secret/**/password: "*" stays within one segment, "**"
crosses "/"). --actor matches the person behind the requests: an entity
name or id (the server's identity store adds every entity merged into it,
so one name finds the person through every auth method they used), an
actor name such as userpass/carol, a display name, or a token accessor
(raw or as logged, hmac-sha256:...).

The filters behind report figures are options too: --remote-address
(address or CIDR), --request-id, --policy (root: every root-token
request), --status, --error-code, --login ok|failed, --auth-method,
--entity, --category privileged[:policy|audit|seal|mounts|snapshot],
--off-hours true|false with --business-hours and --tz, --incomplete,
--has actor,address. --count prints how many records match and
--distinct actor how many people: the commands reports cite beside each
figure. A KV version 2 path written as the kv commands name it
(secret/ward/7) is read as its data path (secret/data/ward/7), and a
warning says so. The table hides client preflight requests (the Vault
CLI reads sys/internal/ui/mounts/... before each kv command) unless
--show-preflight.

The token needs read on sys/audit/query (see the auditor policy in the
README). --log queries audit logs on this machine instead, several nodes'
at once (a cluster keeps one chain per node): each is verified, indexed in
a scratch folder, and the records are merged, with each node's checkpoint
and a line per node. --format is table, csv (RFC 4180), json or ocsf (one OCSF 1.3
event per line).

    $ vigil audit query --since 24h --path secret/data/prod/ --allowed false
    $ vigil audit query --actor alice --since 2024-05-01 --until 2024-06-01 --format csv > alice-may.csv
    $ vigil audit query --count --login failed --remote-address 203.0.113.0/24 --since 30d`)
	since := fs.String("since", "", "only records at or after this time (RFC 3339, date, or duration before now such as 24h, 7d)")
	until := fs.String("until", "", "only records before this time (same forms as --since)")
	actor := fs.String("actor", "", "entity name or id, actor name (userpass/carol), display name, or token accessor")
	path := fs.String("path", "", "path prefix, or glob (* ? [..], ** crosses /)")
	op := fs.String("operation", "", "read, create, update, patch, delete, list (revoke, renew: lease expiry)")
	allowed := fs.String("allowed", "", "true: only allowed requests; false: only denied or failed ones")
	mount := fs.String("mount", "", "mount point, e.g. secret/")
	node := fs.String("node-id", "", "only this node's records (ClickHouse tables may hold several)")
	flagName := fs.String("flag", "", "only records carrying this decision flag (name or name=value, e.g. break_glass)")
	var logs multiFlag
	fs.Var(&logs, "log", "query these audit logs here instead of the server: a file device's path (e.g. /var/log/vigil/audit.log), repeatable for several nodes' logs")
	pubkey := fs.String("pubkey", "", "with --log: the checkpoint public key (PEM, base64 or raw) the logs' checkpoints are verified with")
	remote := fs.String("remote-address", "", "client address, exact or CIDR (203.0.113.0/24)")
	reqID := fs.String("request-id", "", "one request")
	policy := fs.String("policy", "", "requests whose token carried this policy (root: every root-token request)")
	status := fs.String("status", "", "HTTP status answered, e.g. 403")
	errCode := fs.String("error-code", "", "error code, e.g. permission_denied")
	login := fs.String("login", "", "ok or failed: logins through an auth method and their outcome")
	authMethod := fs.String("auth-method", "", "the auth method behind the request (userpass, approle, token, root, ...)")
	entity := fs.String("entity", "", "an exact entity id")
	category := fs.String("category", "", "privileged, or privileged:policy|audit|seal|mounts|snapshot")
	offHours := fs.String("off-hours", "", "true: only requests outside business hours; false: only inside")
	bizHours := fs.String("business-hours", "", "the business hours for --off-hours, HH-HH (default 08-18, Monday to Friday)")
	tz := fs.String("tz", "", "the time zone of the business hours (default UTC), e.g. Asia/Kathmandu")
	incomplete := fs.String("incomplete", "", "true: only requests without a response entry")
	has := fs.String("has", "", "fields the record must have: actor, address (comma-separated)")
	exact := fs.Bool("exact-path", false, "compare --path with the whole path instead of as a prefix")
	preflight := fs.Bool("show-preflight", false, "table: also show client preflight requests (sys/internal/ui/mounts/..., read by the Vault CLI before each kv command)")
	count := fs.Bool("count", false, "print only how many records match (every page is read; reports cite their figures this way)")
	distinct := fs.String("distinct", "", "print how many distinct values of a field the matching records have, and each with its count: actor, entity, address, path, mount")
	limit := fs.Int("limit", 1000, "most records to print (0: all)")
	pageSize := fs.Int("page-size", 1000, "records fetched per request")
	after := fs.String("after", "", "continue after this cursor (printed when --limit cut the output)")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 0); c != 0 {
		return c
	}
	format := cf.format
	switch format {
	case "", "table", "csv", "json", "ocsf":
	default:
		return usageError("Invalid output format: %s (want table, csv, json or ocsf)", format)
	}
	if *allowed != "" {
		if _, err := strconv.ParseBool(*allowed); err != nil {
			return usageError("--allowed must be true or false, got %q", *allowed)
		}
	}
	if *limit < 0 || *pageSize <= 0 || *pageSize > query.MaxLimit {
		return usageError("--limit must be >= 0 and --page-size between 1 and %d", query.MaxLimit)
	}
	params := url.Values{}
	for k, v := range map[string]string{"since": *since, "until": *until, "actor": *actor, "path": *path, "operation": *op,
		"allowed": *allowed, "mount": *mount, "node_id": *node, "flag": *flagName, "after": *after,
		"remote_address": *remote, "request_id": *reqID, "policy": *policy, "status": *status, "error_code": *errCode,
		"login": *login, "auth_method": *authMethod, "entity": *entity, "category": *category, "off_hours": *offHours,
		"business_hours": *bizHours, "tz": *tz, "incomplete": *incomplete, "has": *has} {
		if v != "" {
			params.Set(k, v)
		}
	}
	if *exact {
		params.Set("exact_path", "true")
	}
	if (format == "" || format == "table") && !*preflight && !*count && *distinct == "" {
		params.Set("preflight", "exclude")
	}
	switch *distinct {
	case "", "actor", "entity", "address", "path", "mount":
	default:
		return usageError("--distinct must be actor, entity, address, path or mount, got %q", *distinct)
	}
	if *count || *distinct != "" {
		*limit = 0 // every page
	}
	out := queryOutput{format: format, count: *count, distinct: *distinct}
	if len(logs) > 0 {
		all, err := queryLogs(context.Background(), logs, *pubkey, params.Get, *limit)
		if err != nil {
			return fail("%v", err)
		}
		return out.print(all)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	var all query.Result
	var first *query.Result
	next := ""
	for {
		size := *pageSize
		if *limit > 0 {
			size = min(size, *limit-len(all.Records))
		}
		params.Set("limit", strconv.Itoa(size))
		s, err := client.Logical().ReadWithDataWithContext(context.Background(), "sys/audit/query", params)
		if err != nil {
			return apiError("querying the audit trail", err)
		}
		if s == nil || s.Data == nil {
			return fail("querying the audit trail: empty response")
		}
		var page query.Result
		b, _ := json.Marshal(s.Data)
		if err := json.Unmarshal(b, &page); err != nil {
			return fail("querying the audit trail: unexpected response: %v", err)
		}
		if first == nil {
			first = &page
		}
		all.Records = append(all.Records, page.Records...)
		all.Scanned += page.Scanned
		next = page.Next
		if next == "" || *limit > 0 && len(all.Records) >= *limit {
			break
		}
		params.Set("after", next)
	}
	all.Backend, all.Checkpoint, all.Checkpoints = first.Backend, first.Checkpoint, first.Checkpoints
	all.Verification, all.Warnings, all.Next = first.Verification, first.Warnings, next
	if next != "" {
		defer fmt.Fprintf(stderr, "More records match. Continue with: --after %s\n", next)
	}
	return out.print(&all)
}

// queryOutput is how a query's result is printed.
type queryOutput struct {
	format   string
	count    bool   // only the number of records
	distinct string // only the distinct values of this field
}

// print prints a query's result: its warnings, then the count, the
// distinct values or the records in the output format.
func (o queryOutput) print(all *query.Result) int {
	for _, w := range all.Warnings {
		fmt.Fprintf(stderr, "WARNING! %s\n", w)
	}
	if o.count {
		fmt.Fprintln(stdout, len(all.Records))
		fmt.Fprintln(stderr, queryCheckpointLine(all))
		return 0
	}
	if o.distinct != "" {
		printDistinct(all, o.distinct)
		return 0
	}
	switch o.format {
	case "json":
		return printJSON(all)
	case "csv":
		if err := query.WriteCSV(stdout, all.Records); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintln(stderr, queryCheckpointLine(all))
	case "ocsf":
		for i := range all.Records {
			ev, err := query.OCSF(&all.Records[i], version())
			if err != nil {
				return fail("%v", err)
			}
			fmt.Fprintln(stdout, string(ev))
		}
		fmt.Fprintln(stderr, queryCheckpointLine(all))
	default:
		printQueryTable(all)
	}
	return 0
}

func printQueryTable(res *query.Result) {
	if len(res.Records) == 0 {
		fmt.Fprintln(stdout, "No matching audit records.")
	} else {
		rows := make([][]string, 0, len(res.Records))
		for i := range res.Records {
			r := &res.Records[i]
			rows = append(rows, []string{r.Time.UTC().Format(time.RFC3339), queryActor(r), r.RemoteAddr, r.Operation, r.Path,
				queryDecision(r), strings.Join(r.GrantingPolicies, ","), r.RequestID})
		}
		writeTable([]string{"Time", "Actor", "Remote Address", "Operation", "Path", "Decision", "Granting Policy", "Request ID"}, rows)
	}
	fmt.Fprintf(stdout, "\n%d records from the %s backend.\n%s\n", len(res.Records), res.Backend, queryCheckpointLine(res))
	if res.Verification != "" {
		fmt.Fprintf(stdout, "Verified: %s\n", res.Verification)
	}
}

func queryActor(r *query.Record) string {
	switch {
	case r.Actor != "" && !r.Internal:
		return r.Actor
	case r.DisplayName != "":
		if r.Internal {
			return r.DisplayName + " (vigil)"
		}
		return r.DisplayName
	case r.EntityID != "":
		return r.EntityID
	case r.Accessor != "":
		return r.Accessor
	}
	return "(no token)"
}

func queryDecision(r *query.Record) string {
	d := "allowed"
	if !r.Allowed {
		d = "DENIED"
		if r.ErrorCode != "" && r.ErrorCode != "permission_denied" {
			d = "FAILED (" + r.ErrorCode + ")"
		}
	} else if r.Error != "" {
		d = "allowed, error"
	}
	if len(r.Flags) > 0 {
		d += " [" + query.FlagsString(r.Flags) + "]"
	}
	if r.Incomplete {
		d += " (no response recorded)"
	}
	return d
}

func queryCheckpointLine(res *query.Result) string {
	cp := res.Checkpoint
	if cp == nil {
		return "Checkpoint: none (no signed checkpoint covers the log yet)"
	}
	return fmt.Sprintf("Checkpoint: node %s seq %d hash %s at %s, Ed25519 signature %s (key %s)",
		cp.NodeID, cp.Seq, cp.Hash, cp.Time.UTC().Format(time.RFC3339Nano), cp.Signature, cp.KeyID)
}

// printDistinct prints how many distinct values of field the records
// have (the reports' "distinct identities" figures), then each value with
// its count, most frequent first.
func printDistinct(res *query.Result, field string) {
	counts := map[string]int{}
	for i := range res.Records {
		r := &res.Records[i]
		var v string
		switch field {
		case "actor":
			v = queryActor(r)
			if r.EntityID != "" {
				v = "entity " + r.EntityID
			}
		case "entity":
			v = r.EntityID
		case "address":
			v = r.RemoteAddr
		case "path":
			v = r.Path
		case "mount":
			v = r.MountPoint
		}
		counts[v]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	fmt.Fprintln(stdout, len(keys))
	for _, k := range keys {
		fmt.Fprintf(stdout, "%8d  %s\n", counts[k], k)
	}
	fmt.Fprintln(stderr, queryCheckpointLine(res))
}
