package main

// `vigil audit enable|disable|list|hash|checkpoint-key|verify`: the
// sys/audit API, and offline verification of audit log segments.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
)

func init() {
	register(&command{name: "audit enable", synopsis: "Enable an audit device", run: runAuditEnable})
	register(&command{name: "audit disable", synopsis: "Disable an audit device", run: runAuditDisable})
	register(&command{name: "audit list", synopsis: "List the enabled audit devices", run: runAuditList})
	register(&command{name: "audit hash", synopsis: "Hash a value with an audit device's HMAC salt", run: runAuditHash})
	register(&command{name: "audit checkpoint-key", synopsis: "Show the public key that verifies audit checkpoints", run: runAuditCheckpointKey})
	register(&command{name: "audit verify", synopsis: "Verify audit log segments strictly (hash chain, signed checkpoints, Merkle roots, witnesses)", run: runAuditVerify})
}

// runAuditEnable is `vigil audit enable [-path=P] [-description=D] [-local] TYPE [K=V...]`.
func runAuditEnable(args []string) int {
	var cf clientFlags
	fs := newFlags("audit enable", &cf)
	setUsage(fs, "audit enable [options] TYPE [K=V...]", `
Enables an audit device of TYPE (file or stdout) at -path (default: TYPE).
Options are K=V pairs, as in Vault:

    $ vigil audit enable file file_path=/var/log/vigil/audit.log
    $ vigil audit enable -path=ship file file_path=/var/log/vigil/ship.log fsync=interval compress=true`)
	path := fs.String("path", "", "where to enable the device (default: TYPE)")
	desc := fs.String("description", "", "human-friendly description")
	local := fs.Bool("local", false, "local to this cluster (not replicated)")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, -1); c != 0 {
		return c
	}
	typ := pos[0]
	opts := map[string]string{}
	for _, kv := range pos[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError("invalid option %q: expected K=V", kv)
		}
		opts[k] = v
	}
	p := *path
	if p == "" {
		p = typ
	}
	p = strings.Trim(p, "/")
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if err := client.Sys().EnableAuditWithOptions(p, &vaultapi.EnableAuditOptions{Type: typ, Description: *desc, Options: opts, Local: *local}); err != nil {
		return apiError("enabling audit device", err)
	}
	fmt.Fprintf(stdout, "Success! Enabled the %s audit device at: %s/\n", typ, p)
	return 0
}

// runAuditDisable is `vigil audit disable PATH`.
func runAuditDisable(args []string) int {
	var cf clientFlags
	fs := newFlags("audit disable", &cf)
	setUsage(fs, "audit disable [options] PATH", `
Disables the audit device at PATH. Devices declared in the server
configuration cannot be disabled here, nor the last device while audit is
required.

    $ vigil audit disable file/`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	p := strings.Trim(pos[0], "/")
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if err := client.Sys().DisableAudit(p); err != nil {
		return apiError("disabling audit device", err)
	}
	fmt.Fprintf(stdout, "Success! Disabled audit device (if it was enabled) at: %s/\n", p)
	return 0
}

// runAuditList is `vigil audit list [-detailed]`.
func runAuditList(args []string) int {
	var cf clientFlags
	fs := newFlags("audit list", &cf)
	setUsage(fs, "audit list [options]", `
Lists the enabled audit devices.

    $ vigil audit list -detailed`)
	detailed := fs.Bool("detailed", false, "show options and replication")
	_, code, ok := cf.parse(fs, args, 0, 0)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	devs, err := client.Sys().ListAudit()
	if err != nil {
		return apiError("listing audit devices", err)
	}
	if !cf.isTable() {
		return printJSON(devs)
	}
	if len(devs) == 0 {
		fmt.Fprintln(stdout, "No audit devices are enabled.")
		return 0
	}
	paths := make([]string, 0, len(devs))
	for p := range devs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	rows := [][]string{{"Path", "Type", "Description"}, {"----", "----", "-----------"}}
	if *detailed {
		rows = [][]string{{"Path", "Type", "Description", "Replication", "Options"}, {"----", "----", "-----------", "-----------", "-------"}}
	}
	for _, p := range paths {
		d := devs[p]
		desc := d.Description
		if desc == "" {
			desc = "n/a"
		}
		row := []string{p, d.Type, desc}
		if *detailed {
			repl := "replicated"
			if d.Local {
				repl = "local"
			}
			keys := make([]string, 0, len(d.Options))
			for k := range d.Options {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var o []string
			for _, k := range keys {
				o = append(o, k+"="+d.Options[k])
			}
			row = append(row, repl, "map["+strings.Join(o, " ")+"]")
		}
		rows = append(rows, row)
	}
	printTable(rows)
	return 0
}

// runAuditHash is `vigil audit hash PATH INPUT`.
func runAuditHash(args []string) int {
	var cf clientFlags
	fs := newFlags("audit hash", &cf)
	setUsage(fs, "audit hash [options] PATH INPUT", `
Hashes INPUT with the HMAC salt of the audit device at PATH, giving the
"hmac-sha256:..." value that device writes for it: search the log for it.
INPUT "-" reads stdin.

    $ vigil audit hash file s3cr3t`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 2, 2); c != 0 {
		return c
	}
	in := pos[1]
	if in == "-" {
		b, err := readAllStdin()
		if err != nil {
			return fail("%v", err)
		}
		in = strings.TrimRight(string(b), "\n")
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	h, err := client.Sys().AuditHash(strings.Trim(pos[0], "/"), in)
	if err != nil {
		return apiError("hashing", err)
	}
	if cf.isTable() && cf.field == "" {
		fmt.Fprintln(stdout, h)
		return 0
	}
	return cf.output(map[string]any{"hash": h})
}

// runAuditCheckpointKey is `vigil audit checkpoint-key [-output FILE]`.
func runAuditCheckpointKey(args []string) int {
	var cf clientFlags
	fs := newFlags("audit checkpoint-key", &cf)
	setUsage(fs, "audit checkpoint-key [options]", `
Shows the Ed25519 public key that verifies the signed checkpoints in audit
logs. -output writes it as PEM for "vigil audit verify -pubkey".

    $ vigil audit checkpoint-key -output audit-key.pem`)
	out := fs.String("output", "", "write the PEM public key to this file")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 0); c != 0 {
		return c
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	s, err := client.Logical().Read("sys/audit/checkpoint-key")
	if err != nil {
		return apiError("reading the checkpoint key", err)
	}
	if s == nil {
		return fail("no checkpoint key")
	}
	if *out != "" {
		pemKey, _ := s.Data["public_key_pem"].(string)
		if err := os.WriteFile(*out, []byte(pemKey), 0o644); err != nil {
			return fail("%v", err)
		}
		return cf.success("Wrote the checkpoint public key (key_id %v) to %s", s.Data["key_id"], *out)
	}
	return cf.output(s.Data)
}

// parseCheckpointArg accepts the API's JSON (possibly wrapped in a Vault
// response envelope under "data").
func parseCheckpointArg(b []byte) (chain.Checkpoint, error) {
	var env struct {
		Data *audit.CheckpointJSON `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err == nil && env.Data != nil && env.Data.Hash != "" {
		return env.Data.Checkpoint()
	}
	var cj audit.CheckpointJSON
	if err := json.Unmarshal(b, &cj); err != nil {
		return chain.Checkpoint{}, err
	}
	if cj.Hash == "" || cj.Seq == 0 {
		return chain.Checkpoint{}, errors.New("not a checkpoint: seq and hash are required")
	}
	return cj.Checkpoint()
}

func readAllStdin() ([]byte, error) { return io.ReadAll(stdin) }

// verifyTrust loads -pubkey (a PEM file) and -checkpoint (JSON, or a file
// holding it) into opts. A checkpoint also fixes the node id when none is
// given: a checkpoint is about one node's chain.
func verifyTrust(opts *chain.VerifyOptions, pubkey, cpArg string) error {
	if pubkey != "" {
		b, err := os.ReadFile(pubkey)
		if err != nil {
			return err
		}
		if opts.PublicKey, err = audit.ParsePublicKey(b); err != nil {
			return fmt.Errorf("%s: %w", pubkey, err)
		}
	}
	if cpArg == "" {
		return nil
	}
	raw := []byte(cpArg)
	if !strings.HasPrefix(strings.TrimSpace(cpArg), "{") {
		b, err := os.ReadFile(cpArg)
		if err != nil {
			return fmt.Errorf("-checkpoint: %w", err)
		}
		raw = b
	}
	cp, err := parseCheckpointArg(raw)
	if err != nil {
		return fmt.Errorf("-checkpoint: %w", err)
	}
	opts.Checkpoint = &cp
	if opts.NodeID == "" {
		opts.NodeID = cp.NodeID
	}
	return nil
}
