package main

// `vigil audit prove` and `vigil audit verify-proof`: RFC 9162 inclusion
// and consistency proofs over the audit chain's Merkle tree.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/vigilsec/vigil/audit/chain"
)

func init() {
	register(&command{name: "audit prove", synopsis: "Prove that an audit line, or an earlier checkpoint, is in a signed checkpoint's Merkle tree", run: runAuditProve})
	register(&command{name: "audit verify-proof", synopsis: "Check an audit inclusion or consistency proof offline", run: runAuditVerifyProof})
}

// runAuditProve is `vigil audit prove -seq N | -from A [-to B] [options] [PATH...]`.
func runAuditProve(args []string) int {
	var cf clientFlags
	fs := newFlags("audit prove", &cf)
	setUsage(fs, "audit prove -seq N [options] [PATH...]\n       vigil audit prove -from A [-to B] [options] [PATH...]", `
With -seq, writes an inclusion proof: the audit line with that seq, the
signed checkpoint whose Merkle root commits to it, and the audit path from
the line to that root, so anyone can check that one record is in the log
without the rest of it ("vigil audit verify-proof"). With -from, writes a
consistency proof that the checkpoint covering seq -to (default: the
newest) extends the one covering seq -from: nothing the earlier one
covered was changed since.

Without PATHs the server builds the proof (GET sys/audit/proof/...); with
PATHs (segment files or folders) it is built from the files, which are
verified first, and must hold the chain from its first line.

    $ vigil audit prove -seq 1234 -o line-1234.proof.json
    $ vigil audit prove -from 1000 -o since-1000.proof.json
    $ vigil audit prove -seq 1234 /var/log/vigil/`)
	seq := fs.Int64("seq", 0, "the seq of the line to prove")
	cpSeq := fs.Int64("checkpoint", 0, "prove against the checkpoint covering this seq (default: the newest, or the first after -seq offline)")
	from := fs.Int64("from", 0, "consistency: the seq the earlier checkpoint covers")
	to := fs.Int64("to", 0, "consistency: the seq the later checkpoint covers (default: the newest)")
	device := fs.String("device", "", "the file audit device (default: the only one)")
	out := fs.String("o", "", "write the proof to this file (default: stdout)")
	pubkey := fs.String("pubkey", "", "offline: the checkpoint public key to verify the files with (default: from the segment headers)")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if (*seq > 0) == (*from > 0) {
		return usageError("give exactly one of -seq or -from")
	}
	var bundle any
	if len(pos) == 0 {
		client, err := cf.client()
		if err != nil {
			return fail("%v", err)
		}
		path, q := "sys/audit/proof/inclusion", map[string][]string{}
		if *seq > 0 {
			q["seq"] = []string{strconv.FormatInt(*seq, 10)}
			if *cpSeq > 0 {
				q["checkpoint"] = []string{strconv.FormatInt(*cpSeq, 10)}
			}
		} else {
			path = "sys/audit/proof/consistency"
			q["from"] = []string{strconv.FormatInt(*from, 10)}
			if *to > 0 {
				q["to"] = []string{strconv.FormatInt(*to, 10)}
			}
		}
		if *device != "" {
			q["device"] = []string{*device}
		}
		s, err := client.Logical().ReadWithData(path, q)
		if err != nil {
			return apiError("building the proof", err)
		}
		if s == nil {
			return fail("no proof returned")
		}
		bundle = s.Data
	} else {
		paths, skipped, err := collectSegments(pos)
		if err != nil {
			return fail("%v", err)
		}
		for _, s := range skipped {
			fmt.Fprintf(stderr, "skipped %s: %s\n", s.path, s.why)
		}
		if paths, err = chain.OrderSegments(paths); err != nil {
			return fail("%v", err)
		}
		opts := chain.VerifyOptions{}
		if err := verifyTrust(&opts, *pubkey, ""); err != nil {
			return fail("%v", err)
		}
		ctx := context.Background()
		if *seq > 0 {
			bundle, err = chain.ProveOffline(ctx, chain.FileSources(paths), opts, uint64(*seq), uint64(*cpSeq))
		} else {
			bundle, err = chain.ProveConsistencyOffline(ctx, chain.FileSources(paths), opts, uint64(*from), uint64(*to))
		}
		if err != nil {
			return fail("%v", err)
		}
	}
	b, err := json.MarshalIndent(bundle, "", "  ")
	if err != nil {
		return fail("%v", err)
	}
	b = append(b, '\n')
	if *out == "" {
		_, _ = stdout.Write(b)
		return 0
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "Wrote the proof to %s\n", *out)
	return 0
}

// runAuditVerifyProof is `vigil audit verify-proof [-pubkey FILE] FILE`.
func runAuditVerifyProof(args []string) int {
	var cf clientFlags
	fs := newFlags("audit verify-proof", &cf)
	setUsage(fs, "audit verify-proof [options] FILE", `
Checks a proof written by "vigil audit prove" (or returned by
sys/audit/proof/..., or carried by a query result or a report), offline:
for an inclusion proof, the line's own hash, then the audit path from the
line to the checkpoint's Merkle root (RFC 9162); for a consistency proof,
that the later checkpoint's tree extends the earlier one's; and every
checkpoint's signature. FILE "-" reads stdin. The key comes from -pubkey,
else from the server ($VIGIL_ADDR): without a trusted key a proof proves
nothing, so one is required. Exit status 0 when the proof holds, 1 when
it does not, 2 on errors.

    $ vigil audit verify-proof -pubkey key.pem line-1234.proof.json`)
	pubkey := fs.String("pubkey", "", "file with the checkpoint public key (PEM, base64 or raw)")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	var raw []byte
	var err error
	if pos[0] == "-" {
		raw, err = readAllStdin()
	} else {
		raw, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fail("%v", err)
	}
	opts := chain.VerifyOptions{}
	if err := verifyTrust(&opts, *pubkey, ""); err != nil {
		return fail("%v", err)
	}
	key := opts.PublicKey
	if key == nil {
		client, err := cf.client()
		if err != nil {
			return fail("%v", err)
		}
		k, _, err := serverTrust(client, "", "", "")
		if err != nil {
			return fail("no -pubkey, and the server's key could not be read: %v", err)
		}
		key = k
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(raw, &env) == nil && len(env.Data) > 0 {
		raw = env.Data // a Vault response envelope
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fail("not a proof: %v", err)
	}
	switch head.Type {
	case "inclusion":
		var b chain.InclusionBundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return fail("inclusion proof: %v", err)
		}
		if err := chain.VerifyInclusionBundle(&b, key); err != nil {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "OK: the line with seq %d of node %s is leaf %d of the tree of %d leaves whose root %s checkpoint seq %d signs (key %s)\n",
			b.Seq, b.NodeID, b.LeafIndex, b.TreeSize, b.Checkpoint.Root, b.Checkpoint.Seq, chain.KeyID(key))
	case "consistency":
		var b chain.ConsistencyBundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return fail("consistency proof: %v", err)
		}
		if err := chain.VerifyConsistencyBundle(&b, key); err != nil {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "OK: the checkpoint at seq %d (%d leaves) extends the checkpoint at seq %d (%d leaves) of node %s (key %s)\n",
			b.To.Seq, b.To.TreeSize, b.From.Seq, b.From.TreeSize, b.From.NodeID, chain.KeyID(key))
	default:
		return fail("not a proof: type %q (want inclusion or consistency)", head.Type)
	}
	return 0
}
