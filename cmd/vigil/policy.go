package main

// The policy commands, as Vault's `vault policy ...`:
//
//	vigil policy write [-type=acl|rego] [-enforcement=mandatory|advisory] NAME FILE|-
//	vigil policy read [-type=acl|rego] NAME
//	vigil policy list [-type=acl|rego]
//	vigil policy delete [-type=acl|rego] NAME
//	vigil policy fmt FILE
//	vigil policy explain [-token-accessor=A | -explain-token=T] [-param=K=V]... [-header=K=V]... [-remote-addr=IP] [-sudo] PATH OPERATION
//
// -type=rego manages custom Rego modules (sys/policies/rego/NAME) with the
// same verbs rather than through a separate command tree.

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/authz"
)

func init() {
	register(&command{name: "policy write", synopsis: "Upload an ACL policy (or, with -type=rego, a custom Rego policy)", run: runPolicyWrite})
	register(&command{name: "policy read", synopsis: "Print a policy's rules", run: runPolicyRead})
	register(&command{name: "policy list", synopsis: "List the policies", run: runPolicyList})
	register(&command{name: "policy delete", synopsis: "Delete a policy", run: runPolicyDelete})
	register(&command{name: "policy fmt", synopsis: "Rewrite an HCL policy file in canonical format", run: runPolicyFmt})
	register(&command{name: "policy explain", synopsis: "Explain which policy and rule decide a request", run: runPolicyExplain})
}

// policyType adds -type and returns a function giving the API path prefix.
func policyType(fs *flag.FlagSet) func() (string, error) {
	typ := fs.String("type", "acl", "policy type: acl (Vault HCL) or rego (custom Rego module)")
	return func() (string, error) {
		switch *typ {
		case "acl", "":
			return "sys/policies/acl/", nil
		case "rego":
			return "sys/policies/rego/", nil
		}
		return "", fmt.Errorf("invalid -type %q (want acl or rego)", *typ)
	}
}

func readPolicySource(arg string) ([]byte, error) {
	if arg == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(arg)
}

func runPolicyWrite(args []string) int {
	var cf clientFlags
	fs := newFlags("policy write", &cf)
	prefix := policyType(fs)
	level := fs.String("enforcement", "mandatory", "rego policies: mandatory (deny reasons deny) or advisory (only recorded)")
	setUsage(fs, "policy write [options] NAME FILE|-", `
Uploads a policy named NAME from FILE ("-" reads standard input). ACL
policies are Vault HCL (or JSON); with -type=rego FILE is a Rego v1 module
declaring "package vigil.custom.NAME". A policy that does not parse or
compile is rejected with the line of the problem.

    $ vigil policy write dev dev.hcl
    $ cat dev.hcl | vigil policy write dev -
    $ vigil policy write -type=rego -enforcement=advisory business_hours hours.rego`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 2, 2); c != 0 {
		return c
	}
	p, err := prefix()
	if err != nil {
		return usageError("%v", err)
	}
	src, err := readPolicySource(pos[1])
	if err != nil {
		return fail("reading policy: %v", err)
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	data := map[string]any{"policy": string(src)}
	if strings.HasPrefix(p, "sys/policies/rego/") {
		data["enforcement_level"] = *level
	}
	if _, err := c.Logical().Write(p+pos[0], data); err != nil {
		return apiError("uploading policy", err)
	}
	if strings.HasPrefix(p, "sys/policies/rego/") {
		return cf.success("Uploaded rego policy: %s", pos[0])
	}
	return cf.success("Uploaded policy: %s", pos[0])
}

func runPolicyRead(args []string) int {
	var cf clientFlags
	fs := newFlags("policy read", &cf)
	prefix := policyType(fs)
	setUsage(fs, "policy read [options] NAME", "Prints the rules of the policy NAME.\n\n    $ vigil policy read default")
	pos, code, ok := cf.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	p, err := prefix()
	if err != nil {
		return usageError("%v", err)
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	s, err := c.Logical().Read(p + pos[0])
	if err != nil {
		return apiError("reading policy", err)
	}
	if s == nil {
		return fail("No policy named: %s", pos[0])
	}
	if !cf.isTable() || cf.field != "" {
		return cf.printSecret(s)
	}
	rules, _ := s.Data["policy"].(string)
	fmt.Fprint(stdout, rules)
	if !strings.HasSuffix(rules, "\n") {
		fmt.Fprintln(stdout)
	}
	return 0
}

func runPolicyList(args []string) int {
	var cf clientFlags
	fs := newFlags("policy list", &cf)
	prefix := policyType(fs)
	setUsage(fs, "policy list [options]", "Lists the policies.\n\n    $ vigil policy list\n    $ vigil policy list -type=rego")
	_, code, ok := cf.parse(fs, args, 0, 0)
	if !ok {
		return code
	}
	p, err := prefix()
	if err != nil {
		return usageError("%v", err)
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	s, err := c.Logical().List(strings.TrimSuffix(p, "/"))
	if err != nil {
		return apiError("listing policies", err)
	}
	var names []string
	if s != nil {
		if keys, ok := s.Data["keys"].([]any); ok {
			for _, k := range keys {
				names = append(names, fmt.Sprint(k))
			}
		}
	}
	if !cf.isTable() {
		if names == nil {
			names = []string{}
		}
		return printJSON(names)
	}
	for _, n := range names {
		fmt.Fprintln(stdout, n)
	}
	return 0
}

func runPolicyDelete(args []string) int {
	var cf clientFlags
	fs := newFlags("policy delete", &cf)
	prefix := policyType(fs)
	setUsage(fs, "policy delete [options] NAME", "Deletes the policy NAME. Deleting a missing policy is not an error;\nroot and default cannot be deleted.")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	p, err := prefix()
	if err != nil {
		return usageError("%v", err)
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if _, err := c.Logical().Delete(p + pos[0]); err != nil {
		return apiError("deleting policy", err)
	}
	return cf.success("Deleted policy: %s", pos[0])
}

// runPolicyFmt rewrites FILE in canonical HCL formatting after checking it
// is a valid policy, as `vault policy fmt` does.
func runPolicyFmt(args []string) int {
	fs := flag.NewFlagSet("policy fmt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "policy fmt FILE", "Formats the HCL policy in FILE in place (canonical indentation and\nalignment). The policy must be valid.")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	src, err := os.ReadFile(pos[0])
	if err != nil {
		return fail("reading %s: %v", pos[0], err)
	}
	if _, err := authz.ParseACL(strings.TrimSuffix(pos[0], ".hcl"), string(src)); err != nil {
		return fail("%v", err)
	}
	if strings.HasPrefix(strings.TrimSpace(string(src)), "{") {
		return fail("%s is a JSON policy; fmt formats HCL", pos[0])
	}
	if _, diags := hclwrite.ParseConfig(src, pos[0], hcl.InitialPos); diags.HasErrors() {
		return fail("%s", diags.Error())
	}
	out := hclwrite.Format(src)
	info, err := os.Stat(pos[0])
	if err != nil {
		return fail("%v", err)
	}
	if err := os.WriteFile(pos[0], out, info.Mode().Perm()); err != nil {
		return fail("writing %s: %v", pos[0], err)
	}
	fmt.Fprintf(stdout, "Success! Formatted policy: %s\n", pos[0])
	return 0
}

func runPolicyExplain(args []string) int {
	var cf clientFlags
	fs := newFlags("policy explain", &cf)
	accessor := fs.String("token-accessor", "", "accessor of the token whose decision is explained")
	tok := fs.String("explain-token", "", "the token whose decision is explained (instead of -token-accessor)")
	var params kvFlag
	var headers kvFlag
	var names stringSliceFlag
	fs.Var(&params, "param", "a request parameter K=V (repeatable)")
	fs.Var(&names, "param-name", "a request parameter name without a value (repeatable)")
	fs.Var(&headers, "header", "a request header K=V, e.g. X-Vigil-Reason=INC-1 (repeatable)")
	remote := fs.String("remote-addr", "", "the client address the request comes from")
	sudo := fs.Bool("sudo", false, "treat the path as root-protected (default: as the server routes it)")
	setUsage(fs, "policy explain [options] PATH OPERATION", `
Shows how the server decides OPERATION (create, read, update, patch, delete,
list) on PATH for the token with -token-accessor: the ACL rule and policies
that matched, the granting policies, deny reasons of custom Rego policies,
advisories and audit flags. Needs update on sys/policies/explain.

    $ vigil policy explain -token-accessor=8f2c... secret/data/prod/db read
    $ vigil policy explain -token-accessor=8f2c... -header=X-Vigil-Reason=INC-1 secret/data/prod/db read`)
	pos, code, ok := cf.parse(fs, args, 2, 2)
	if !ok {
		return code
	}
	if (*accessor == "") == (*tok == "") {
		return usageError("exactly one of -token-accessor and -explain-token is required")
	}
	c, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	body := map[string]any{"path": pos[0], "operation": strings.ToLower(pos[1])}
	if *accessor != "" {
		body["accessor"] = *accessor
	} else {
		body["token"] = *tok
	}
	if len(params) > 0 || len(names) > 0 {
		pm := map[string]any{}
		for k, v := range params {
			pm[k] = v
		}
		for _, n := range names {
			pm[n] = nil
		}
		body["parameters"] = pm
	}
	if len(headers) > 0 {
		body["headers"] = map[string]string(headers)
	}
	if *remote != "" {
		body["remote_addr"] = *remote
	}
	if isFlagSet(fs, "sudo") {
		body["sudo"] = *sudo
	}
	s, err := c.Logical().Write("sys/policies/explain", body)
	if err != nil {
		return apiError("explaining", err)
	}
	if s == nil {
		return fail("empty response")
	}
	if !cf.isTable() || cf.field != "" {
		return cf.printSecret(s)
	}
	printExplanation(s)
	return 0
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// printExplanation renders an explain answer for people.
func printExplanation(s *vaultapi.Secret) {
	d := s.Data
	verdict := "DENIED"
	if d["allowed"] == true {
		verdict = "ALLOWED"
	}
	fmt.Fprintf(stdout, "%s: %v %v\n\n", verdict, d["operation"], d["path"])
	rows := [][2]string{{"policies", listText(d["policies"])}, {"mount", fmt.Sprint(d["mount"])},
		{"sudo_required", fmt.Sprint(d["sudo_required"])}}
	if m, ok := d["matched_rule"].(map[string]any); ok {
		rows = append(rows, [2]string{"matched_rule", fmt.Sprintf("path %q (%v) in %s: %s", m["pattern"], m["kind"], listText(m["policies"]), listText(m["capabilities"]))})
	} else {
		rows = append(rows, [2]string{"matched_rule", "none"})
	}
	var grants []string
	if gp, ok := d["granting_policies"].([]any); ok {
		for _, g := range gp {
			if o, ok := g.(map[string]any); ok {
				grants = append(grants, fmt.Sprintf("%v (%v)", o["name"], o["type"]))
			}
		}
	}
	rows = append(rows, [2]string{"granting_policies", "[" + strings.Join(grants, " ") + "]"})
	if fl, ok := d["flags"].(map[string]any); ok && len(fl) > 0 {
		keys := make([]string, 0, len(fl))
		for k := range fl {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, fl[k]))
		}
		rows = append(rows, [2]string{"flags", strings.Join(parts, " ")})
	}
	if e, _ := d["error"].(string); e != "" {
		rows = append(rows, [2]string{"error", e})
	}
	rows = append(rows, [2]string{"cacheable", fmt.Sprint(d["cacheable"])})
	w := 0
	for _, r := range rows {
		w = max(w, len(r[0]))
	}
	for _, r := range rows {
		fmt.Fprintf(stdout, "%-*s  %s\n", w, r[0], r[1])
	}
	for _, sec := range []struct{ title, key string }{{"Deny reasons", "deny_reasons"}, {"Advisories", "advisories"}, {"Explanation", "explanation"}} {
		items, _ := d[sec.key].([]any)
		if len(items) == 0 {
			continue
		}
		fmt.Fprintf(stdout, "\n%s:\n", sec.title)
		for _, it := range items {
			fmt.Fprintf(stdout, "  - %v\n", it)
		}
	}
}

func listText(v any) string {
	items, _ := v.([]any)
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = fmt.Sprint(it)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
