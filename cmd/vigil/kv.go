package main

// `vigil kv put|get|patch|list`: the KV secrets engine, v1 or v2, addressed
// either as "-mount=secret foo" or as "secret/foo". As Vault's CLI does,
// the mount and its version are found with a preflight request to
// sys/internal/ui/mounts/<path>; v2 paths get their data/, metadata/,
// delete/, undelete/ or destroy/ segment inserted after the mount.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"path"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	registerGroup("kv", "Read and write secrets in a KV (v1 or v2) secrets engine")
	register(&command{name: "kv put", synopsis: "Write a secret to a KV mount (a new version on v2)", run: runKVPut})
	register(&command{name: "kv get", synopsis: "Read a secret (or one version of it) from a KV mount", run: runKVGet})
	register(&command{name: "kv patch", synopsis: "Update some keys of a KV v2 secret, keeping the others", run: runKVPatch})
	register(&command{name: "kv list", synopsis: "List the keys under a KV path", run: runKVList})
}

// kvCmd holds what every kv command shares: client flags and -mount.
type kvCmd struct {
	cf    clientFlags
	fs    *flag.FlagSet
	mount string
}

func newKVCmd(name, usage, help string) *kvCmd {
	k := &kvCmd{}
	k.fs = newFlags(name, &k.cf)
	setUsage(k.fs, usage, help)
	k.fs.StringVar(&k.mount, "mount", "", `path of the KV mount; the next argument is then the secret's path within it (default: "secret/foo" form)`)
	return k
}

// kvPath is a resolved KV path argument.
type kvPath struct {
	mount     string // the mount, e.g. "secret/" ("" when unknown)
	v2        bool
	partial   string // the argument, joined with the mount for v2 -mount syntax
	mountFlag bool
}

// full returns the API path: mount/<prefix>/rest for v2, the plain path
// for v1 (prefix is ignored).
func (p *kvPath) full(prefix string) string {
	if p.v2 {
		return kvAddPrefix(p.partial, p.mount, prefix)
	}
	if p.mountFlag {
		return path.Join(p.mount, p.partial)
	}
	return p.partial
}

// sanitizePath trims spaces and surrounding slashes.
func sanitizePath(s string) string {
	return strings.Trim(strings.TrimSpace(s), "/")
}

// kvAddPrefix inserts apiPrefix after the mount: ("secret/foo", "secret/",
// "data") → "secret/data/foo".
func kvAddPrefix(p, mount, apiPrefix string) string {
	if p == mount || p == strings.TrimSuffix(mount, "/") {
		return path.Join(mount, apiPrefix)
	}
	return path.Join(mount, apiPrefix, strings.TrimPrefix(p, mount))
}

// resolve runs the preflight for arg (or for -mount) and returns the path.
func (k *kvCmd) resolve(client *vaultapi.Client, arg string) (*kvPath, int) {
	p := &kvPath{partial: sanitizePath(arg), mountFlag: k.mount != ""}
	probe := p.partial
	if p.mountFlag {
		probe = sanitizePath(k.mount)
	}
	mount, version, err := kvPreflight(client, probe)
	if err != nil {
		return nil, kvPreflightError(probe, err)
	}
	p.v2 = version == 2
	if p.mountFlag {
		if mount == "" {
			mount = sanitizePath(k.mount) + "/"
		}
		if p.v2 {
			p.partial = path.Join(mount, p.partial)
		}
	}
	p.mount = mount
	return p, 0
}

// kvPreflight asks the server which mount serves p and its KV version. A
// 404 (a server without the endpoint) means version 1, as in Vault.
// The question itself is never wrapped (-wrap-ttl applies to the command's
// own request only).
func kvPreflight(client *vaultapi.Client, p string) (mount string, version int, err error) {
	wrap := client.CurrentWrappingLookupFunc()
	client.SetWrappingLookupFunc(nil)
	defer client.SetWrappingLookupFunc(wrap)
	resp, err := client.Logical().ReadRaw("sys/internal/ui/mounts/" + p)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode == 404 {
			return "", 1, nil
		}
		return "", 0, err
	}
	s, err := vaultapi.ParseSecret(resp.Body)
	if err != nil {
		return "", 0, err
	}
	if s == nil {
		return "", 0, errors.New("nil response from pre-flight request")
	}
	mount, _ = s.Data["path"].(string)
	if opts, ok := s.Data["options"].(map[string]any); ok && fmt.Sprint(opts["version"]) == "2" {
		return mount, 2, nil
	}
	return mount, 1, nil
}

func kvPreflightError(p string, err error) int {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && re.StatusCode == 403 {
		apiError(fmt.Sprintf("checking the KV mount of %q (preflight capability check returned 403: is a KV engine mounted there, and may this token read sys/internal/ui/mounts/%s?)", p, p), err)
		return 2
	}
	return apiError(fmt.Sprintf("checking the KV mount of %q", p), err)
}

// kvRead reads a KV path; a 404 carrying data (a deleted v2 version)
// yields that data, a plain 404 yields nil.
func kvRead(client *vaultapi.Client, p string, params map[string][]string) (*vaultapi.Secret, error) {
	return client.Logical().ParseRawResponseAndCloseBody(client.Logical().ReadRawWithData(p, params))
}

// printWrapped prints a wrapped response (-wrap-ttl) as Vault's CLI does —
// its wrap info, or the wrap field -field names — and reports whether s
// was one; the kv commands' own layouts have nothing to show of it.
func (k *kvCmd) printWrapped(s *vaultapi.Secret) (int, bool) {
	if s == nil || s.WrapInfo == nil {
		return 0, false
	}
	if k.cf.field != "" {
		return k.cf.printField(secretField(s, k.cf.field)), true
	}
	return k.cf.printSecret(s), true
}

// printKVWrite prints the response of a v2 write (put, patch): the secret
// path and version metadata in table format, else the whole response.
func (k *kvCmd) printKVWrite(fullPath string, s *vaultapi.Secret) int {
	if s == nil {
		return k.cf.success("Data written to: %s", fullPath)
	}
	if code, ok := k.printWrapped(s); ok {
		return code
	}
	if k.cf.field != "" {
		return k.cf.printField(secretField(s, k.cf.field))
	}
	if !k.cf.isTable() {
		return printJSON(s)
	}
	printWarnings(s)
	printPathHeader("Secret Path", fullPath)
	fmt.Fprintln(stdout, headerForMap("Metadata", s.Data))
	writeKVTable(stdout, mapRows(s.Data))
	return 0
}

// runKVPut is `vigil kv put [-mount=M] [-cas=N] PATH K=V...`.
func runKVPut(args []string) int {
	k := newKVCmd("kv put", "kv put [options] PATH K=V... | - | K=@FILE", `
Writes the data to PATH in a KV store, replacing what was there; on a KV v2
mount this creates a new version. Values may be read from a file (K=@FILE)
or stdin (K=-); "-" alone reads a JSON object from stdin.

    $ vigil kv put -mount=secret foo bar=baz
    $ vigil kv put secret/foo bar=baz
    $ vigil kv put -cas=1 secret/foo bar=qux`)
	cas := k.fs.Int("cas", -1, "check-and-set: 0 writes only if the key does not exist; N only if the current version is N")
	pos, code, ok := parseCmd(k.fs, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) < 1:
		return usageError("Not enough arguments (expected >1, got %d)", len(pos))
	case len(pos) == 1:
		return usageError("Must supply data")
	}
	if c := k.cf.checkFormat(); c != 0 {
		return c
	}
	data, err := parseKVArgs(pos[1:])
	if err != nil {
		return usageError("Failed to parse K=V data: %v", err)
	}
	client, err := k.cf.client()
	if err != nil {
		return fail("%v", err)
	}
	p, code := k.resolve(client, pos[0])
	if p == nil {
		return code
	}
	full := p.full("data")
	body := data
	if p.v2 {
		opts := map[string]any{}
		if *cas > -1 {
			opts["cas"] = *cas
		}
		body = map[string]any{"data": data, "options": opts}
	}
	s, err := client.Logical().Write(full, body)
	if err != nil {
		return apiError("writing data to "+full, err)
	}
	return k.printKVWrite(full, s)
}

// runKVGet is `vigil kv get [-mount=M] [-version=N] PATH`.
func runKVGet(args []string) int {
	k := newKVCmd("kv get", "kv get [options] PATH", `
Reads the secret at PATH. On KV v2 the latest version is returned, or the
one given with -version; a deleted or destroyed version shows its metadata
and no data.

    $ vigil kv get secret/foo
    $ vigil kv get -mount=secret -version=1 foo
    $ vigil kv get -field=bar secret/foo`)
	version := k.fs.Int("version", 0, "the version to read (KV v2; default: latest)")
	pos, code, ok := parseCmd(k.fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	if c := k.cf.checkFormat(); c != 0 {
		return c
	}
	client, err := k.cf.client()
	if err != nil {
		return fail("%v", err)
	}
	p, code := k.resolve(client, pos[0])
	if p == nil {
		return code
	}
	full := p.full("data")
	var params map[string][]string
	if p.v2 && *version > 0 {
		params = map[string][]string{"version": {fmt.Sprint(*version)}}
	}
	s, err := kvRead(client, full, params)
	if err != nil {
		return apiError("reading "+full, err)
	}
	if s == nil {
		fmt.Fprintf(stderr, "No value found at %s\n", full)
		return 2
	}
	if code, ok := k.printWrapped(s); ok {
		return code
	}
	if k.cf.field != "" {
		if !p.v2 {
			return k.cf.printField(secretField(s, k.cf.field))
		}
		inner, ok := s.Data["data"].(map[string]any)
		if !ok || inner == nil {
			fmt.Fprintf(stderr, "No data found at %s\n", full)
			return 2
		}
		return k.cf.printField(k.cf.field, inner[k.cf.field])
	}
	if !k.cf.isTable() {
		return printJSON(s)
	}
	if !p.v2 {
		return k.cf.printSecret(s)
	}
	printWarnings(s)
	printPathHeader("Secret Path", full)
	if md, ok := s.Data["metadata"].(map[string]any); ok && md != nil {
		fmt.Fprintln(stdout, headerForMap("Metadata", md))
		writeKVTable(stdout, mapRows(md))
	}
	if data, ok := s.Data["data"].(map[string]any); ok && data != nil {
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, headerForMap("Data", data))
		writeKVTable(stdout, mapRows(data))
	}
	return 0
}

// runKVPatch is `vigil kv patch [-mount=M] [-cas=N] [-method=patch|rw] PATH K=V...`.
func runKVPatch(args []string) int {
	k := newKVCmd("kv patch", "kv patch [options] PATH [K=V...]", `
Updates some keys of an existing KV v2 secret, keeping the others, as a new
version. By default this is an HTTP PATCH (JSON merge patch); if the server
refuses PATCH (403/405) it falls back to read-then-write with check-and-set.

    $ vigil kv patch secret/foo bar=new
    $ vigil kv patch -remove-data=old secret/foo`)
	cas := k.fs.Int("cas", -1, "check-and-set version (see kv put)")
	method := k.fs.String("method", "", `"patch" (HTTP PATCH only) or "rw" (read, merge, write); default: patch, falling back to rw`)
	var remove stringSliceFlag
	k.fs.Var(&remove, "remove-data", "key to remove from the secret (repeatable, or comma-separated)")
	pos, code, ok := parseCmd(k.fs, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) < 1:
		return usageError("Not enough arguments (expected >1, got %d)", len(pos))
	case len(pos) == 1 && len(remove) == 0:
		return usageError("Must supply data")
	}
	if *method != "" && *method != "patch" && *method != "rw" {
		return usageError("Unsupported method provided to -method flag: %s", *method)
	}
	if c := k.cf.checkFormat(); c != 0 {
		return c
	}
	data, err := parseKVArgs(pos[1:])
	if err != nil {
		return usageError("Failed to parse K=V data: %v", err)
	}
	var removeKeys []string
	for _, r := range remove {
		for _, key := range strings.Split(r, ",") {
			if key = strings.TrimSpace(key); key != "" {
				removeKeys = append(removeKeys, key)
			}
		}
	}
	client, err := k.cf.client()
	if err != nil {
		return fail("%v", err)
	}
	p, code := k.resolve(client, pos[0])
	if p == nil {
		return code
	}
	if !p.v2 {
		fmt.Fprintln(stderr, "K/V engine mount must be version 2 for patch support")
		return 2
	}
	full := p.full("data")
	if *method == "rw" {
		return k.patchRW(client, full, data, removeKeys, *cas)
	}
	patch := maps.Clone(data)
	for _, key := range removeKeys {
		patch[key] = nil // JSON merge patch: null removes the key
	}
	opts := map[string]any{}
	if *cas > -1 {
		opts["cas"] = *cas
	}
	s, err := client.Logical().JSONMergePatch(context.Background(), full, map[string]any{"data": patch, "options": opts})
	if err != nil {
		var re *vaultapi.ResponseError
		if *method == "" && errors.As(err, &re) && (re.StatusCode == 405 || re.StatusCode == 403) {
			if re.StatusCode == 403 {
				fmt.Fprintf(stderr, "WARNING! PATCH of %s was denied; falling back to read-then-write. Grant the \"patch\" capability to use HTTP PATCH.\n", full)
			}
			return k.patchRW(client, full, data, removeKeys, *cas)
		}
		if errors.As(err, &re) && re.StatusCode == 404 {
			fmt.Fprintf(stderr, "No value found at %s\n", full)
			return 2
		}
		return apiError("writing data to "+full, err)
	}
	return k.printKVWrite(full, s)
}

// patchRW merges data into the current version and writes it back with
// check-and-set on that version (unless -cas was given).
func (k *kvCmd) patchRW(client *vaultapi.Client, full string, data map[string]any, remove []string, cas int) int {
	cur, err := kvRead(client, full, nil)
	if err != nil {
		return apiError("reading "+full, err)
	}
	if cur == nil {
		fmt.Fprintf(stderr, "No value found at %s\n", full)
		return 2
	}
	existing, ok := cur.Data["data"].(map[string]any)
	if !ok || existing == nil {
		fmt.Fprintf(stderr, "No data found at %s\n", full)
		return 2
	}
	maps.Copy(existing, data)
	for _, key := range remove {
		delete(existing, key)
	}
	opts := map[string]any{}
	if cas > -1 {
		opts["cas"] = cas
	} else if md, ok := cur.Data["metadata"].(map[string]any); ok {
		if v, ok := md["version"]; ok {
			opts["cas"] = v
		}
	}
	s, err := client.Logical().Write(full, map[string]any{"data": existing, "options": opts})
	if err != nil {
		return apiError("writing data to "+full, err)
	}
	return k.printKVWrite(full, s)
}

// runKVList is `vigil kv list [-mount=M] [PATH]`.
func runKVList(args []string) int {
	k := newKVCmd("kv list", "kv list [options] PATH", `
Lists the keys under PATH (folders end in "/").

    $ vigil kv list secret/
    $ vigil kv list -mount=secret team/`)
	pos, code, ok := parseCmd(k.fs, args)
	if !ok {
		return code
	}
	minArgs := 1
	if k.mount != "" {
		minArgs = 0
	}
	if c := wantArgs(pos, minArgs, 1); c != 0 {
		return c
	}
	if len(pos) == 0 {
		pos = []string{""}
	}
	if c := k.cf.checkFormat(); c != 0 {
		return c
	}
	client, err := k.cf.client()
	if err != nil {
		return fail("%v", err)
	}
	p, code := k.resolve(client, pos[0])
	if p == nil {
		return code
	}
	full := p.full("metadata")
	s, err := client.Logical().List(full)
	if err != nil {
		return apiError("listing "+full, err)
	}
	_, hasKeys := keysOf(s)
	if !k.cf.isTable() && k.cf.field == "" && !hasKeys {
		printJSON([]string{})
		return 2
	}
	if s == nil || s.Data == nil {
		fmt.Fprintf(stderr, "No value found at %s\n", full)
		return 2
	}
	if !hasKeys {
		fmt.Fprintf(stderr, "No entries found at %s\n", full)
		return 2
	}
	return k.cf.printKeys(s)
}

// keysOf returns the "keys" list of a LIST response.
func keysOf(s *vaultapi.Secret) ([]any, bool) {
	if s == nil || s.Data == nil {
		return nil, false
	}
	keys, ok := s.Data["keys"].([]any)
	return keys, ok
}
