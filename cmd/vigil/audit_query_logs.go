package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/embedded"
)

// queryLogWait bounds how long a scratch index may take to read a log.
const queryLogWait = 10 * time.Minute

// queryLogs answers a query from audit logs on this machine — several
// nodes' at once, as a cluster keeps them (one chain per node). Each log is
// verified (links, hashes, checkpoint signatures: with pubkeyFile's key,
// else the segment headers'), then read by a scratch query index in a
// temporary folder; the records of every log are merged in (time, node,
// seq) order, and the result carries each node's checkpoint and, as
// Verification, one line per node.
func queryLogs(ctx context.Context, paths []string, pubkeyFile string, get func(string) string, limit int) (*query.Result, error) {
	var opts chain.VerifyOptions
	if err := verifyTrust(&opts, pubkeyFile, ""); err != nil {
		return nil, err
	}
	f, err := query.FilterFromParams(get, limit, time.Now())
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "vigil-query-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := &query.Result{Backend: "embedded (local logs)"}
	var lines []string
	for i, p := range paths {
		vo := opts
		vo.Strict = true
		rep, err := chain.VerifyLog(ctx, p, vo)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if !rep.OK {
			return nil, fmt.Errorf("%s (node %s) does not verify: %s", p, rep.NodeID, rep.String())
		}
		pub := opts.PublicKey
		if pub == nil { // the key the verification used: the segment header's
			if h, err := chain.ReadSegmentHeader(p); err == nil {
				if b, err := base64.StdEncoding.DecodeString(h.PublicKey); err == nil && len(b) == ed25519.PublicKeySize {
					pub = ed25519.PublicKey(b)
				}
			}
		}
		ix, err := embedded.Open(embedded.Config{Path: p, Dir: filepath.Join(tmp, fmt.Sprint(i)), NodeID: rep.NodeID,
			PublicKey: func() (ed25519.PublicKey, bool) { return pub, pub != nil }})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		ix.Start()
		wctx, cancel := context.WithTimeout(ctx, queryLogWait)
		err = ix.WaitFor(wctx, rep.LastSeq)
		cancel()
		var res *query.Result
		if err == nil {
			res, err = ix.Query(ctx, f)
		}
		_ = ix.Close()
		if err != nil {
			return nil, fmt.Errorf("%s (node %s): %w", p, rep.NodeID, err)
		}
		out.Records = append(out.Records, res.Records...)
		out.Scanned += res.Scanned
		if res.Checkpoint != nil {
			out.Checkpoints = append(out.Checkpoints, *res.Checkpoint)
		}
		for _, w := range res.Warnings {
			out.Warnings = append(out.Warnings, "node "+rep.NodeID+": "+w)
		}
		lines = append(lines, fmt.Sprintf("node %s: %d records of %d lines (seq %d..%d, key %s)", rep.NodeID, len(res.Records), rep.Lines, rep.FirstSeq, rep.LastSeq, rep.KeyID))
	}
	sort.SliceStable(out.Records, func(i, j int) bool {
		a, b := &out.Records[i], &out.Records[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.Before(b.Time)
		}
		if a.NodeID != b.NodeID {
			return a.NodeID < b.NodeID
		}
		return a.Seq < b.Seq
	})
	if limit > 0 && len(out.Records) > limit {
		out.Records = out.Records[:limit]
		out.Warnings = append(out.Warnings, fmt.Sprintf("more than %d records match: raise --limit", limit))
	}
	if len(out.Checkpoints) > 0 {
		out.Checkpoint = &out.Checkpoints[0]
	}
	out.Verification = strings.Join(lines, "; ")
	return out, nil
}
