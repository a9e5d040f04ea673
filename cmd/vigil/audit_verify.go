package main

// `vigil audit verify [options] PATH...`: strict offline verification of
// audit log segments, anchored to what the server and the witnesses hold.

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/kafka"
	"github.com/vigilsec/vigil/audit/witness"
)

// runAuditVerify is `vigil audit verify [options] PATH...`.
func runAuditVerify(args []string) int {
	var cf clientFlags
	fs := newFlags("audit verify", &cf)
	setUsage(fs, "audit verify [options] PATH...", `
Verifies audit log segments strictly: each line's hash, the chain from
segment to segment (gzip'd segments too), every checkpoint's signature and
Merkle root, the checkpoint cadence the segment headers declare (a
checkpoint at least every checkpoint_every lines and checkpoint_interval,
at every start and clean close, nothing but a restart after a clean
close), and that missing first segments were deleted by retention (a
signed segments_deleted record). PATHs are segment files or folders,
of one node or of several (a cluster's nodes each keep their own chain:
given as separate files or folders, one node each, the segments are
grouped by node and each node's chain is verified and reported on its
own; a folder that mixes nodes is one log with a foreign segment):
files are recognised by their segment header, whatever their name, and
everything else (the query index folder, the Merkle store, the disk
reserve, folders of relinked chains) is skipped and named.

The checkpoint key comes from -pubkey, else from the server when one is
configured ($VIGIL_ADDR or -address; the server's checkpoints and every
witness's are then also required to be in the log), else from the segment
headers (which proves the log is consistent, not that its key is yours:
compare the key id with "vigil audit checkpoint-key"). -witness adds more
trusted checkpoints: an http(s) URL of a witness ({node} and {device} are
filled in), kafka://BROKER[,BROKER]/TOPIC, clickhouse://HOST:PORT/DB/TABLE,
or "server" (what the server's witnesses hold).

Lines after the last checkpoint are covered by no signature: they are
reported ("N lines after the last checkpoint, not covered") and fail the
verification unless -allow-uncovered-tail is given. Exit status: 0 OK,
1 tampering or an uncovered tail, 2 errors.

    $ vigil audit verify /var/log/vigil/
    $ vigil audit verify -pubkey key.pem -witness https://witness.example/v1/sys/audit/witness/{node}/{device} /var/log/vigil/audit*`)
	pubkey := fs.String("pubkey", "", "file with the checkpoint public key (PEM, base64 or raw)")
	var cps, witnesses multiFlag
	fs.Var(&cps, "checkpoint", "trusted checkpoint: JSON, or a file containing it (repeatable)")
	fs.Var(&witnesses, "witness", "witness to take trusted checkpoints from: URL, kafka://..., clickhouse://... or server (repeatable)")
	device := fs.String("device", "", "the audit device the files belong to, for the server's checkpoints (default: the only file device)")
	offline := fs.Bool("offline", false, "do not contact the server even if one is configured")
	allowTail := fs.Bool("allow-uncovered-tail", false, "succeed even when lines after the last checkpoint are not covered")
	node := fs.String("node-id", "", "require every line to belong to this node")
	partial := fs.Bool("partial", false, "the first segment given is not the chain's first (a copy of recent segments): anchor at its header")
	quiet := fs.Bool("quiet", false, "no progress output")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, -1); c != 0 {
		return c
	}
	paths, skipped, err := collectSegments(pos)
	if err != nil {
		return fail("%v", err)
	}
	for _, s := range skipped {
		fmt.Fprintf(stderr, "skipped %s: %s\n", s.path, s.why)
	}
	if len(paths) == 0 {
		return fail("no audit log segments among %s", strings.Join(pos, " "))
	}
	if groups, order, err := byNode(paths); err != nil {
		return fail("%v", err)
	} else if len(order) > 1 && oneNodePerArg(pos, groups) {
		return verifyEachNode(args, pos, groups, order)
	}
	paths, err = chain.OrderSegments(paths)
	if err != nil {
		return fail("%v", err)
	}
	first, _ := chain.ReadSegmentHeader(paths[0])
	logNode, err := nodeOf(paths[0])
	if err != nil {
		return fail("%v", err)
	}
	opts := chain.VerifyOptions{NodeID: *node, Strict: true}
	keySource := ""
	if err := verifyTrust(&opts, *pubkey, ""); err != nil {
		return fail("%v", err)
	}
	if opts.PublicKey != nil {
		keySource = "-pubkey " + *pubkey
	}
	for _, c := range cps {
		var one chain.VerifyOptions
		if err := verifyTrust(&one, "", c); err != nil {
			return fail("%v", err)
		}
		one.Checkpoint.Source = "-checkpoint"
		opts.Checkpoints = append(opts.Checkpoints, *one.Checkpoint)
	}
	ctx := context.Background()
	server := !*offline && (cf.address != "" || os.Getenv("VIGIL_ADDR") != "" || os.Getenv("VAULT_ADDR") != "")
	wantServer := server
	for _, w := range witnesses {
		if w == "server" {
			wantServer = true
		}
	}
	if wantServer {
		client, err := cf.client()
		if err != nil {
			return fail("%v", err)
		}
		k, held, err := serverTrust(client, *device, logNode, filepath.Base(paths[len(paths)-1]))
		if err != nil {
			return fail("reading the server's checkpoint key and checkpoints (use -offline to verify without it): %v", err)
		}
		if opts.PublicKey == nil {
			opts.PublicKey, keySource = k, "the server"
		} else if !opts.PublicKey.Equal(k) {
			return fail("-pubkey %s (key id %s) is not the server's checkpoint key (%s)", *pubkey, chain.KeyID(opts.PublicKey), chain.KeyID(k))
		}
		opts.Checkpoints = append(opts.Checkpoints, held...)
	}
	for _, w := range witnesses {
		if w == "server" {
			continue
		}
		cp, err := readWitness(ctx, w, logNode, *device)
		if err != nil {
			return fail("witness %s: %v", w, err)
		}
		if cp != nil {
			opts.Checkpoints = append(opts.Checkpoints, *cp)
		}
	}
	if opts.PublicKey != nil {
		var bad []string
		opts.Checkpoints, bad = keepSigned(opts.PublicKey, opts.Checkpoints)
		for _, b := range bad {
			fmt.Fprintf(stderr, "WARNING: ignoring a trusted checkpoint not signed by the key: %s\n", b)
		}
	}
	if *partial {
		opts.StartAfter = &chain.StartAfter{Seq: first.PrevSegmentLastSeq, Hash: first.PrevSegmentLastHash}
	}
	var total int64
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	if !*quiet && total > 64<<20 {
		last := time.Now()
		opts.Progress = func(n, lines int64) {
			if time.Since(last) >= time.Second {
				last = time.Now()
				fmt.Fprintf(stderr, "verified %d MB, %d lines...\n", n>>20, lines)
			}
		}
	}
	rep, err := chain.Verify(ctx, chain.FileSources(paths), opts)
	if err != nil {
		return fail("%v", err)
	}
	if keySource == "" {
		keySource = rep.KeySource
	}
	if !cf.isTable() {
		printJSON(verifyJSON(rep, paths, skipped, keySource, opts.Checkpoints))
		return verifyExit(rep, *allowTail)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stderr, "WARNING: %s: %s:%d: %s\n", w.Kind, w.File, w.Line, w.Detail)
	}
	if !rep.OK {
		f := rep.Failure
		fmt.Fprintf(stdout, "FAILED: %s at seq %d (%s line %d): %s\n", f.Kind, f.Seq, f.File, f.Line, f.Detail)
		fmt.Fprintln(stdout, rep.String())
		return 1
	}
	fmt.Fprintf(stdout, "OK: %d segments, %d lines (%d entries, %d checkpoints), seq %d..%d, node %s, anchored at %s\n",
		rep.Segments, rep.Lines, rep.Entries, rep.Checkpoints, rep.FirstSeq, rep.LastSeq, rep.NodeID, rep.Anchor)
	switch rep.KeySource {
	case "segment headers":
		fmt.Fprintf(stdout, "  checkpoint key %s read from the segment headers: this proves the log is consistent, not that the key is your server's;\n"+
			"  compare it with `vigil audit checkpoint-key` or give -pubkey\n", rep.KeyID)
	default:
		fmt.Fprintf(stdout, "  checkpoint key %s from %s; every checkpoint's signature checked\n", rep.KeyID, keySource)
	}
	if rep.TreeChecked {
		fmt.Fprintf(stdout, "  Merkle tree: %d leaves, root %s; every checkpoint's root recomputed\n", rep.Tree.Size, rep.Tree.Root())
	}
	for _, cp := range opts.Checkpoints {
		fmt.Fprintf(stdout, "  trusted checkpoint seq %d from %s: in the log\n", cp.Seq, cp.Source)
	}
	if rep.Relink != nil {
		fmt.Fprintf(stdout, "  this chain was started by a relink at seq %d (reason %q, by %s); the previous chain's last trusted checkpoint was seq %d and its files are in %s\n",
			rep.ChainStart, rep.Relink.Reason, rep.Relink.Actor, rep.Relink.Previous.Seq, rep.Relink.MovedTo)
	}
	if len(rep.Deleted) > 0 {
		fmt.Fprintf(stdout, "  %d segments deleted by retention, each recorded in the chain\n", len(rep.Deleted))
	}
	if rep.Uncovered > 0 {
		from := rep.LastSeq - uint64(rep.Uncovered) + 1
		fmt.Fprintf(stdout, "%s: %d lines after the last checkpoint (seq %d..%d), not covered\n",
			map[bool]string{true: "WARNING", false: "FAILED"}[*allowTail], rep.Uncovered, from, rep.LastSeq)
	}
	return verifyExit(rep, *allowTail)
}

func verifyExit(rep *chain.Report, allowTail bool) int {
	if !rep.OK || rep.Uncovered > 0 && !allowTail {
		return 1
	}
	return 0
}

func verifyJSON(rep *chain.Report, paths []string, skipped []skippedPath, keySource string, trusted []chain.Checkpoint) map[string]any {
	out := map[string]any{"ok": rep.OK, "segments": paths, "lines": rep.Lines, "entries": rep.Entries, "checkpoints": rep.Checkpoints,
		"first_seq": rep.FirstSeq, "last_seq": rep.LastSeq, "node_id": rep.NodeID, "anchor": rep.Anchor, "key_id": rep.KeyID,
		"key_source": keySource, "tree_checked": rep.TreeChecked, "uncovered_lines": rep.Uncovered, "summary": rep.String()}
	if rep.Tree.Size > 0 {
		out["tree_size"], out["root"] = rep.Tree.Size, rep.Tree.Root().String()
	}
	if rep.Failure != nil {
		out["failure"] = map[string]any{"kind": rep.Failure.Kind, "seq": rep.Failure.Seq, "file": rep.Failure.File, "line": rep.Failure.Line, "detail": rep.Failure.Detail}
	}
	var sk []map[string]string
	for _, s := range skipped {
		sk = append(sk, map[string]string{"path": s.path, "why": s.why})
	}
	out["skipped"] = sk
	var tr []map[string]any
	for _, cp := range trusted {
		tr = append(tr, map[string]any{"source": cp.Source, "seq": cp.Seq, "hash": cp.Hash})
	}
	out["trusted_checkpoints"] = tr
	return out
}

// byNode groups segment files by the node whose chain they belong to (a
// cluster's nodes each keep their own chain).
func byNode(paths []string) (map[string][]string, []string, error) {
	groups := map[string][]string{}
	var order []string
	for _, p := range paths {
		n, err := nodeOf(p)
		if err != nil {
			return nil, nil, err
		}
		if _, ok := groups[n]; !ok {
			order = append(order, n)
		}
		groups[n] = append(groups[n], p)
	}
	sort.Strings(order)
	return groups, order, nil
}

// oneNodePerArg reports whether every PATH argument holds one node's
// segments only: several nodes' logs are given as separate files or
// folders. A folder that mixes nodes is one log with a foreign segment in
// it (a splice), and is verified as one chain, which reports it.
func oneNodePerArg(args []string, groups map[string][]string) bool {
	nodeOfPath := map[string]string{}
	for n, ps := range groups {
		for _, p := range ps {
			nodeOfPath[p] = n
		}
	}
	for _, a := range args {
		seen := ""
		for p, n := range nodeOfPath {
			if p != a && filepath.Dir(p) != filepath.Clean(a) {
				continue
			}
			if seen != "" && seen != n {
				return false
			}
			seen = n
		}
	}
	return true
}

// verifyEachNode verifies several nodes' logs given together: each node's
// segments on their own, with the same options (and -node-id set), one
// report per node, then a summary line per node. The exit status is the
// worst of them.
func verifyEachNode(args, pos []string, groups map[string][]string, order []string) int {
	positional := map[string]bool{}
	for _, p := range pos {
		positional[p] = true
	}
	var flags []string
	for _, a := range args {
		if !positional[a] {
			flags = append(flags, a)
		}
	}
	worst := 0
	results := make([]string, 0, len(order))
	for _, n := range order {
		fmt.Fprintf(stdout, "== node %s (%d segments) ==\n", n, len(groups[n]))
		code := runAuditVerify(append(append(append([]string{}, flags...), "-node-id", n), groups[n]...))
		worst = max(worst, code)
		verdict := "OK"
		if code != 0 {
			verdict = "FAILED"
		}
		results = append(results, fmt.Sprintf("node %s: %s", n, verdict))
	}
	fmt.Fprintf(stdout, "== %d nodes: %s ==\n", len(order), strings.Join(results, ", "))
	return worst
}

// skippedPath is a path verify did not treat as a segment, and why.
type skippedPath struct{ path, why string }

// collectSegments expands the arguments into segment files: files are
// recognised by their header, folders are read (not recursively), and
// everything else is skipped with the reason.
func collectSegments(args []string) ([]string, []skippedPath, error) {
	var paths []string
	var skipped []skippedPath
	seen := map[string]bool{}
	add := func(p string) {
		if abs, err := filepath.Abs(p); err == nil && !seen[abs] {
			seen[abs] = true
			paths = append(paths, p)
		}
	}
	check := func(p string) {
		if _, err := chain.ReadSegmentHeader(p); err != nil {
			why := "not an audit log segment (no vigil.segment header)"
			if fi, serr := os.Stat(p); serr == nil && fi.Size() == 0 {
				why = "an empty file"
			}
			skipped = append(skipped, skippedPath{p, why})
			return
		}
		add(p)
	}
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, nil, err
		}
		if !fi.IsDir() {
			if fi.Mode().IsRegular() {
				check(a)
			} else {
				skipped = append(skipped, skippedPath{a, "not a regular file"})
			}
			continue
		}
		if why := knownFolder(filepath.Base(a)); why != "" && (len(args) > 1 || !strings.Contains(why, "relink")) {
			skipped = append(skipped, skippedPath{strings.TrimSuffix(a, "/") + "/", why})
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, nil, err
		}
		before := len(paths)
		for _, e := range ents {
			p := filepath.Join(a, e.Name())
			switch {
			case e.IsDir():
				why := knownFolder(e.Name())
				if why == "" {
					why = "a folder"
				}
				skipped = append(skipped, skippedPath{p + "/", why})
			case e.Type()&fs.ModeType == 0:
				check(p)
			default:
				skipped = append(skipped, skippedPath{p, "not a regular file"})
			}
		}
		if len(paths) == before && len(ents) == 0 {
			skipped = append(skipped, skippedPath{a + "/", "an empty folder"})
		}
	}
	return paths, skipped, nil
}

// knownFolder names the folders Vigil keeps beside an audit log ("" for
// any other).
func knownFolder(name string) string {
	switch {
	case strings.HasSuffix(name, ".index"):
		return "the query index folder"
	case strings.HasSuffix(name, ".merkle"):
		return "the Merkle tree store"
	case strings.Contains(name, ".broken-"):
		return "a chain set aside by a relink: verify it on its own"
	}
	return ""
}

// nodeOf returns the node id of a segment's header line.
func nodeOf(path string) (string, error) {
	rc, err := chain.FileSource(path).Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	buf := make([]byte, 64<<10)
	n, _ := rc.Read(buf)
	line := buf[:n]
	if i := strings.IndexByte(string(line), '\n'); i >= 0 {
		line = line[:i]
	}
	const m = `,"node_id":"`
	i := strings.LastIndex(string(line), m)
	if i < 0 {
		return "", fmt.Errorf("%s: no node_id in the segment header", path)
	}
	rest := string(line[i+len(m):])
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return "", fmt.Errorf("%s: malformed node_id", path)
	}
	return rest[:j], nil
}

// serverTrust reads the checkpoint key and what every witness holds for
// the device the files belong to (sys/audit/witnesses).
func serverTrust(c *vaultapi.Client, device, node, activeName string) (ed25519.PublicKey, []chain.Checkpoint, error) {
	ks, err := c.Logical().Read("sys/audit/checkpoint-key")
	if err != nil {
		return nil, nil, err
	}
	if ks == nil {
		return nil, nil, errors.New("no checkpoint key")
	}
	raw, err := base64.StdEncoding.DecodeString(fmt.Sprint(ks.Data["public_key"]))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, nil, errors.New("the server's checkpoint key is malformed")
	}
	key := ed25519.PublicKey(raw)
	p := "sys/audit/witnesses"
	if device != "" {
		p += "/" + device
	}
	// In a cluster the request runs on the active node, which answers
	// for every node (node_id): what Raft and the other nodes hold.
	ws, err := c.Logical().ReadWithData(p, map[string][]string{"node_id": {node}})
	if err != nil {
		return nil, nil, err
	}
	if ws == nil {
		return key, nil, nil
	}
	if sn, _ := ws.Data["node_id"].(string); sn != node {
		fmt.Fprintf(stderr, "WARNING: the files are node %q's, the server is node %q: its checkpoints do not apply\n", node, sn)
		return key, nil, nil
	}
	devs, _ := ws.Data["devices"].(map[string]any)
	name := device
	if name == "" {
		var names []string
		for n, v := range devs {
			names = append(names, n)
			if m, _ := v.(map[string]any); m != nil && m["file"] == activeName && len(devs) > 1 {
				name = n
			}
		}
		sort.Strings(names)
		switch {
		case name != "":
		case len(names) == 1:
			name = names[0]
		case len(names) == 0:
			return key, nil, nil
		default:
			return nil, nil, fmt.Errorf("the server has several file devices (%s): say which one with -device", strings.Join(names, ", "))
		}
	}
	d, _ := devs[name].(map[string]any)
	list, _ := d["checkpoints"].([]any)
	var out []chain.Checkpoint
	for _, e := range list {
		b, _ := json.Marshal(e)
		var sc struct {
			chain.SignedCheckpoint
			Source string `json:"source"`
		}
		if json.Unmarshal(b, &sc) != nil {
			continue
		}
		cp, err := sc.SignedCheckpoint.Checkpoint()
		if err != nil {
			continue
		}
		cp.Source = "server: " + sc.Source
		out = append(out, cp)
	}
	return key, out, nil
}

// readWitness reads one -witness.
func readWitness(ctx context.Context, spec, node, device string) (*chain.Checkpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch {
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		w := &witness.HTTP{Name: spec, URL: spec}
		if tok := envOr("VIGIL_WITNESS_TOKEN", ""); tok != "" {
			w.Header = map[string][]string{"X-Vault-Token": {tok}}
		}
		cp, err := w.Latest(ctx, node, device)
		if errors.Is(err, witness.ErrNoRecord) {
			fmt.Fprintf(stderr, "WARNING: witness %s holds no checkpoint for %s/%s\n", spec, node, device)
			return nil, nil
		}
		return &cp, err
	case strings.HasPrefix(spec, "kafka://"):
		rest := strings.TrimPrefix(spec, "kafka://")
		brokers, topic, ok := strings.Cut(rest, "/")
		if !ok || topic == "" {
			return nil, errors.New("expected kafka://BROKER[,BROKER]/TOPIC")
		}
		line, err := kafka.LatestCheckpointLine(ctx, kafka.ReadOptions{Brokers: strings.Split(brokers, ","), Topic: topic}, node, 0)
		return lineCheckpoint(line, err, "kafka "+topic)
	case strings.HasPrefix(spec, "clickhouse://"):
		parts := strings.Split(strings.TrimPrefix(spec, "clickhouse://"), "/")
		if len(parts) != 3 {
			return nil, errors.New("expected clickhouse://HOST:PORT/DATABASE/TABLE")
		}
		cfg := clickhouse.Config{Addr: []string{parts[0]}, Database: parts[1], Table: parts[2], Username: envOr("VIGIL_CLICKHOUSE_USER", "default"),
			Password: os.Getenv("VIGIL_CLICKHOUSE_PASSWORD")}
		line, err := clickhouse.LatestCheckpointLine(ctx, cfg, node)
		return lineCheckpoint(line, err, "clickhouse "+parts[1]+"."+parts[2])
	}
	return nil, fmt.Errorf("unknown witness %q: an http(s) URL, kafka://..., clickhouse://... or server", spec)
}

func lineCheckpoint(line []byte, err error, source string) (*chain.Checkpoint, error) {
	if err != nil || line == nil {
		if err == nil {
			fmt.Fprintf(stderr, "WARNING: %s holds no checkpoint of this node\n", source)
		}
		return nil, err
	}
	cp, err := chain.ParseCheckpointLine(line)
	if err != nil {
		return nil, err
	}
	cp.Source = source
	return &cp, nil
}

// keepSigned drops trusted checkpoints the key did not sign.
func keepSigned(key ed25519.PublicKey, cps []chain.Checkpoint) ([]chain.Checkpoint, []string) {
	var ok []chain.Checkpoint
	var bad []string
	for _, c := range cps {
		if len(c.Signature) > 0 {
			if err := c.Verify(key); err != nil {
				bad = append(bad, fmt.Sprintf("%s seq %d: %v", c.Source, c.Seq, err))
				continue
			}
		}
		ok = append(ok, c)
	}
	return ok, bad
}
