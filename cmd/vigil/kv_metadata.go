package main

// `vigil kv metadata get|put|delete`: the metadata of KV v2 secrets
// (versions, max_versions, cas_required, delete_version_after,
// custom_metadata).

import (
	"flag"
	"fmt"
	"sort"
	"strconv"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	registerGroup("kv metadata", "Manage the metadata of KV v2 secrets")
	register(&command{name: "kv metadata get", synopsis: "Read a KV v2 secret's metadata and versions", run: runKVMetadataGet})
	register(&command{name: "kv metadata put", synopsis: "Set a KV v2 secret's metadata (max versions, CAS, custom metadata)", run: runKVMetadataPut})
	register(&command{name: "kv metadata delete", synopsis: "Delete a KV v2 secret's metadata and all its versions", run: runKVMetadataDelete})
}

// metadataPath resolves PATH for a metadata command; KV v1 has none.
// full is "" when the command must return code.
func (k *kvCmd) metadataPath(arg string) (client *vaultapi.Client, full string, code int) {
	client, err := k.cf.client()
	if err != nil {
		return nil, "", fail("%v", err)
	}
	p, code := k.resolve(client, arg)
	if p == nil {
		return nil, "", code
	}
	if !p.v2 {
		fmt.Fprintln(stderr, "Metadata not supported on KV Version 1")
		return nil, "", 1
	}
	return client, p.full("metadata"), 0
}

// runKVMetadataGet is `vigil kv metadata get [-mount=M] PATH`.
func runKVMetadataGet(args []string) int {
	k := newKVCmd("kv metadata get", "kv metadata get [options] PATH", `
Shows the metadata of a KV v2 secret and of each of its versions.

    $ vigil kv metadata get secret/foo`)
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
	client, full, code := k.metadataPath(pos[0])
	if full == "" {
		return code
	}
	s, err := kvRead(client, full, nil)
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
		return k.cf.printField(k.cf.field, s.Data[k.cf.field])
	}
	if !k.cf.isTable() {
		return printJSON(s)
	}
	versions, ok := s.Data["versions"].(map[string]any)
	if !ok {
		fmt.Fprintln(stderr, "No versions found")
		return 2
	}
	md := make(map[string]any, len(s.Data))
	for key, v := range s.Data {
		if key != "versions" {
			md[key] = v
		}
	}
	printWarnings(s)
	printPathHeader("Metadata Path", full)
	fmt.Fprintln(stdout, headerForMap("Metadata", md))
	writeKVTable(stdout, mapRows(md))
	nums := make([]int, 0, len(versions))
	for key := range versions {
		if n, err := strconv.Atoi(key); err == nil {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	for _, n := range nums {
		vm, _ := versions[strconv.Itoa(n)].(map[string]any)
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, headerForMap(fmt.Sprintf("Version %d", n), vm))
		writeKVTable(stdout, mapRows(vm))
	}
	return 0
}

// runKVMetadataPut is `vigil kv metadata put [-max-versions=N]
// [-cas-required] [-delete-version-after=D] [-custom-metadata=K=V] PATH`.
// Only the flags given are sent, so the others keep their values.
func runKVMetadataPut(args []string) int {
	k := newKVCmd("kv metadata put", "kv metadata put [options] PATH", `
Creates or updates the metadata of a KV v2 secret. Only the options given
are changed.

    $ vigil kv metadata put -max-versions=5 -cas-required secret/foo
    $ vigil kv metadata put -custom-metadata=owner=alice secret/foo`)
	maxVersions := k.fs.Int("max-versions", -1, "number of versions to keep (0: the mount's setting)")
	casRequired := k.fs.Bool("cas-required", false, "require check-and-set on every write")
	var deleteAfter durationFlag
	k.fs.Var(&deleteAfter, "delete-version-after", `delete versions this long after they are written ("0s": never)`)
	var custom kvFlag
	k.fs.Var(&custom, "custom-metadata", "K=V custom metadata (repeatable; replaces the whole set)")
	pos, code, ok := parseCmd(k.fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	set := map[string]bool{}
	k.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	data := map[string]any{}
	if *maxVersions >= 0 {
		data["max_versions"] = *maxVersions
	}
	if set["cas-required"] {
		data["cas_required"] = *casRequired
	}
	if deleteAfter.set {
		data["delete_version_after"] = deleteAfter.d.String()
	}
	if set["custom-metadata"] {
		data["custom_metadata"] = map[string]string(custom)
	}
	client, full, code := k.metadataPath(pos[0])
	if full == "" {
		return code
	}
	s, err := client.Logical().Write(full, data)
	if err != nil {
		return apiError("writing data to "+full, err)
	}
	if s == nil {
		return k.cf.success("Data written to: %s", full)
	}
	return k.cf.printSecret(s)
}

// runKVMetadataDelete is `vigil kv metadata delete [-mount=M] PATH`.
func runKVMetadataDelete(args []string) int {
	k := newKVCmd("kv metadata delete", "kv metadata delete [options] PATH", `
Deletes a KV v2 secret entirely: its metadata and every version.

    $ vigil kv metadata delete secret/foo`)
	pos, code, ok := parseCmd(k.fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	client, full, code := k.metadataPath(pos[0])
	if full == "" {
		return code
	}
	if _, err := client.Logical().Delete(full); err != nil {
		return apiError("deleting "+full, err)
	}
	fmt.Fprintf(stdout, "Success! Data deleted (if it existed) at: %s\n", full)
	return 0
}
